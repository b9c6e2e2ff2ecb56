//! CPU time and memory of a process (the SFU under test) read from `/proc`, and CPU time of the
//! calling thread (the baseline relay).
//!
//! CPU seconds are `(utime + stime) / CLK_TCK` from `/proc/PID/stat` (all threads of the
//! process, not its reaped children); peak memory is `VmHWM` ("high water mark" of the resident
//! set) from `/proc/PID/status`, which the kernel keeps for the life of the process, so one read
//! just before the process is stopped gives the peak of the whole run. The `procfs` crate does
//! the parsing (the `comm` field of `stat` may contain spaces and parentheses).

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

/// Why a process' usage could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProcessUsageError {
    /// `/proc/PID` could not be read (the process exited, or no permission).
    #[error("reading /proc for pid {pid}: {source}")]
    Proc {
        /// The process.
        pid: u32,
        /// What procfs said.
        #[source]
        source: procfs::ProcError,
    },
    /// The pid does not fit the kernel's pid type.
    #[error("pid {0} out of range")]
    Pid(u32),
    /// `/proc/PID/status` has no `VmHWM` line (kernel threads).
    #[error("pid {0} reports no VmHWM")]
    NoHighWaterMark(u32),
    /// The calling thread's CPU clock could not be read.
    #[error("thread CPU clock: {0}")]
    ThreadClock(#[from] nix::Error),
}

/// CPU and memory of one process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessUsage {
    /// User plus system CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size now, in bytes.
    pub rss_bytes: u64,
    /// Largest resident set size so far (VmHWM), in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads `pid`'s CPU time and memory from `/proc`.
pub fn read_process_usage(pid: u32) -> Result<ProcessUsage, ProcessUsageError> {
    let raw_pid = i32::try_from(pid).map_err(|_| ProcessUsageError::Pid(pid))?;
    let wrap = |source| ProcessUsageError::Proc { pid, source };
    let process = procfs::process::Process::new(raw_pid).map_err(wrap)?;
    let stat = process.stat().map_err(wrap)?;
    let status = process.status().map_err(wrap)?;
    let ticks = procfs::ticks_per_second() as f64;
    let peak_kib = status
        .vmhwm
        .ok_or(ProcessUsageError::NoHighWaterMark(pid))?;
    Ok(ProcessUsage {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        rss_bytes: status.vmrss.unwrap_or(0) * 1024,
        peak_rss_bytes: peak_kib * 1024,
    })
}

/// CPU time consumed by a process between [`CpuMeter::start`] and [`CpuMeter::elapsed`]:
/// what a run costs, without the process' start-up.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    at_start: f64,
}

impl CpuMeter {
    /// Notes `pid`'s CPU time now.
    pub fn start(pid: u32) -> Result<Self, ProcessUsageError> {
        Ok(CpuMeter {
            pid,
            at_start: read_process_usage(pid)?.cpu_seconds,
        })
    }

    /// CPU seconds since `start`, and the current usage.
    pub fn elapsed(&self) -> Result<(f64, ProcessUsage), ProcessUsageError> {
        let now = read_process_usage(self.pid)?;
        Ok(((now.cpu_seconds - self.at_start).max(0.0), now))
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, nanosecond resolution): a
/// thread measures its own cost without the 10 ms granularity of `/proc` ticks.
pub fn thread_cpu_time() -> Result<Duration, ProcessUsageError> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::from(ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    #[test]
    fn own_process_is_readable() {
        let usage = read_process_usage(std::process::id()).unwrap();
        assert!(usage.rss_bytes > 0);
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        assert!(usage.cpu_seconds >= 0.0);
    }

    #[test]
    fn child_cpu_and_peak_memory_are_measured() {
        // A real child: the shell spins (CPU in the child itself), then holds a 32 MB string
        // from a command substitution (its resident set), then sleeps until killed.
        let started = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; \
                 x=$(head -c 32000000 /dev/zero | tr '\\0' a); sleep 30",
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let meter = CpuMeter::start(pid).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let usage = loop {
            let u = read_process_usage(pid).unwrap();
            if u.peak_rss_bytes >= 32_000_000 || Instant::now() > deadline {
                break u;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let wall = started.elapsed().as_secs_f64();
        let (cpu_delta, _) = meter.elapsed().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(usage.peak_rss_bytes >= 32_000_000, "peak {usage:?}");
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        // The spin loop costs tens of milliseconds at least; CPU time can never exceed the
        // wall time for a single-threaded shell.
        assert!(usage.cpu_seconds >= 0.02, "cpu {usage:?}");
        assert!(
            usage.cpu_seconds <= wall + 0.05,
            "cpu {usage:?} wall {wall}"
        );
        assert!(cpu_delta <= usage.cpu_seconds + 0.02);
        // Once it is gone, reading it is an error, not a panic.
        assert!(read_process_usage(pid).is_err());
    }

    #[test]
    fn thread_clock_counts_only_this_threads_work() {
        // Spin until this thread's clock shows 30 ms of CPU (bounded by 5 s of wall time): the
        // clock must advance with work and can never run ahead of the wall clock, however
        // loaded the machine is.
        let before = thread_cpu_time().unwrap();
        let started = Instant::now();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - before < Duration::from_millis(30)
            && started.elapsed() < Duration::from_secs(5)
        {
            for _ in 0..1000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
        let spent = thread_cpu_time().unwrap() - before;
        let wall = started.elapsed();
        assert!(spent >= Duration::from_millis(30), "{spent:?} in {wall:?}");
        assert!(
            spent <= wall + Duration::from_millis(2),
            "{spent:?} > {wall:?}"
        );
        // Another thread's work does not show on this thread's clock.
        let mine = thread_cpu_time().unwrap();
        std::thread::spawn(|| {
            let until = Instant::now() + Duration::from_millis(50);
            while Instant::now() < until {}
        })
        .join()
        .unwrap();
        let idle = thread_cpu_time().unwrap() - mine;
        assert!(idle < Duration::from_millis(20), "{idle:?}");
    }
}
