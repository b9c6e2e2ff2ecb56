//! The engine: `--workers` threads, each a [`Worker`] loop; viewers are dealt to them in turn.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use super::worker::{Worker, WorkerCounters, WorkerHandle};
use crate::participant::LiveCounters;

/// The sans-IO viewer engine's worker threads.
pub struct ViewerEngine {
    handles: Vec<WorkerHandle>,
    threads: Vec<JoinHandle<()>>,
    counters: Vec<Arc<WorkerCounters>>,
}

impl std::fmt::Debug for ViewerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerEngine")
            .field("workers", &self.handles.len())
            .finish_non_exhaustive()
    }
}

/// What the engine's viewers received, over every worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// RTP packets received (after SRTP), every one of them reassembled and, with its frame,
    /// SFrame-decrypted.
    pub packets_received: u64,
    /// Of those, the packets that took the short path (decrypted without `rtc`'s pipeline).
    pub packets_short_path: u64,
    /// Datagrams the kernel refused to send (ICE, DTLS, RTCP of the viewers).
    pub send_dropped: u64,
}

impl ViewerEngine {
    /// Starts `workers` worker threads (at least one). `epoch` is the run clock's origin;
    /// decrypted frames are added to `live`.
    pub fn start(
        workers: usize,
        epoch: Instant,
        live: Arc<LiveCounters>,
    ) -> Result<Self, std::io::Error> {
        let mut engine = Self {
            handles: Vec::new(),
            threads: Vec::new(),
            counters: Vec::new(),
        };
        for i in 0..workers.max(1) {
            let counters = Arc::new(WorkerCounters::default());
            let (worker, handle) = Worker::new(epoch, live.clone(), counters.clone())
                .map_err(std::io::Error::other)?;
            let thread = std::thread::Builder::new()
                .name(format!("viewers-{i}"))
                .spawn(move || worker.run())?;
            engine.handles.push(handle);
            engine.threads.push(thread);
            engine.counters.push(counters);
        }
        Ok(engine)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.handles.len()
    }

    /// The worker viewer `index` belongs to (dealt in turn).
    pub(super) fn worker_for(&self, index: u64) -> WorkerHandle {
        let i = (index % self.handles.len() as u64) as usize;
        self.handles[i].clone()
    }

    /// What the viewers received so far.
    pub fn stats(&self) -> EngineStats {
        let mut stats = EngineStats::default();
        for c in &self.counters {
            stats.packets_received += c.packets_received.load(Ordering::Relaxed);
            stats.packets_short_path += c.packets_short_path.load(Ordering::Relaxed);
            stats.send_dropped += c.send_dropped.load(Ordering::Relaxed);
        }
        stats
    }

    /// Stops the workers (every session still open is closed) and waits for them.
    pub fn stop(self) -> EngineStats {
        for handle in &self.handles {
            handle.send(super::worker::Command::Shutdown);
        }
        drop(self.handles);
        for thread in self.threads {
            let _ = thread.join();
        }
        let mut stats = EngineStats::default();
        for c in &self.counters {
            stats.packets_received += c.packets_received.load(Ordering::Relaxed);
            stats.packets_short_path += c.packets_short_path.load(Ordering::Relaxed);
            stats.send_dropped += c.send_dropped.load(Ordering::Relaxed);
        }
        stats
    }
}
