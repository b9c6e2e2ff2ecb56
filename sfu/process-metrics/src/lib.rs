//! The `process_*` metrics of the SFU and signaling (`docs/metrics.md`), read from `/proc/self`.
//!
//! Why not the `prometheus` crate's own `process` feature: its collector keeps
//! `process_cpu_seconds_total` in an integer counter, so the CPU time is truncated to whole
//! seconds and `rate(process_cpu_seconds_total[1m])` moves in steps of 1/60 of a core, which
//! hides the SFU's per-packet cost in the dashboard and the `SfuCpuSaturated` rule. This
//! collector reports the same names with the same meaning, the CPU time as a float with the
//! kernel's clock-tick resolution (utime + stime of `/proc/self/stat` divided by `CLK_TCK`).
//!
//! Linux only, like the services. A metric `/proc` cannot answer for at a scrape is left out of
//! that scrape rather than reported as 0.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// Names of every metric this collector exports (what the rules and dashboard may use).
pub const METRIC_NAMES: [&str; 7] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// A `prometheus` collector of the calling process' CPU time, memory, file descriptors,
/// threads and start time: register it in the service's registry next to its own metrics.
#[derive(Debug)]
pub struct ProcessCollector {
    descs: Vec<Desc>,
    cpu_seconds: Counter,
    /// Serialises the read-then-advance of `cpu_seconds` when two scrapes run at once.
    cpu_update: Mutex<()>,
    open_fds: IntGauge,
    max_fds: IntGauge,
    virtual_memory: IntGauge,
    resident_memory: IntGauge,
    start_time: Gauge,
    threads: IntGauge,
}

impl ProcessCollector {
    /// The collector of this process. Fails only on an invalid metric name (a programming
    /// error); the start time is read once here, the rest at each scrape.
    pub fn for_self() -> Result<Self, prometheus::Error> {
        let cpu_seconds = Counter::with_opts(Opts::new(
            METRIC_NAMES[0],
            "Total user and system CPU time spent in seconds.",
        ))?;
        let open_fds = IntGauge::new(METRIC_NAMES[1], "Number of open file descriptors.")?;
        let max_fds = IntGauge::new(METRIC_NAMES[2], "Maximum number of open file descriptors.")?;
        let virtual_memory = IntGauge::new(METRIC_NAMES[3], "Virtual memory size in bytes.")?;
        let resident_memory = IntGauge::new(METRIC_NAMES[4], "Resident memory size in bytes.")?;
        let start_time = Gauge::new(
            METRIC_NAMES[5],
            "Start time of the process since unix epoch in seconds.",
        )?;
        let threads = IntGauge::new(METRIC_NAMES[6], "Number of OS threads in the process.")?;
        if let Some(seconds) = start_time_seconds() {
            start_time.set(seconds);
        }
        let mut descs = Vec::new();
        descs.extend(cpu_seconds.desc().into_iter().cloned());
        for gauge in [
            &open_fds,
            &max_fds,
            &virtual_memory,
            &resident_memory,
            &threads,
        ] {
            descs.extend(gauge.desc().into_iter().cloned());
        }
        descs.extend(start_time.desc().into_iter().cloned());
        Ok(ProcessCollector {
            descs,
            cpu_seconds,
            cpu_update: Mutex::new(()),
            open_fds,
            max_fds,
            virtual_memory,
            resident_memory,
            start_time,
            threads,
        })
    }

    /// User plus system CPU time of this process so far, in seconds, as `/proc/self/stat` says
    /// (clock-tick resolution, usually 10 ms). `None` when `/proc` cannot be read.
    pub fn cpu_seconds_now() -> Option<f64> {
        let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
        Some(cpu_seconds(stat.utime, stat.stime))
    }

    /// Brings the counter up to `total` seconds. A counter only goes up: a reading below the
    /// current value (two scrapes racing, each with its own reading) leaves it as it is.
    fn advance_cpu_seconds(&self, total: f64) {
        // A poisoned lock only means another scrape panicked mid-update; the guard protects
        // no data of its own, so carrying on is sound.
        let _guard = self
            .cpu_update
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let increase = total - self.cpu_seconds.get();
        if increase > 0.0 {
            self.cpu_seconds.inc_by(increase);
        }
    }
}

/// CPU seconds from `/proc/<pid>/stat`'s utime and stime (in clock ticks).
fn cpu_seconds(utime_ticks: u64, stime_ticks: u64) -> f64 {
    (utime_ticks + stime_ticks) as f64 / procfs::ticks_per_second() as f64
}

/// Seconds since the Unix epoch at which this process started: boot time plus the start
/// offset in `/proc/self/stat` (clock ticks since boot).
fn start_time_seconds() -> Option<f64> {
    let boot = procfs::boot_time_secs().ok()?;
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some(boot as f64 + stat.starttime as f64 / procfs::ticks_per_second() as f64)
}

/// Saturating `u64` → `i64` for gauges (values beyond `i64::MAX` do not occur for these).
fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(process) = procfs::process::Process::myself() else {
            return Vec::new();
        };
        let mut families = Vec::with_capacity(METRIC_NAMES.len());
        if let Ok(stat) = process.stat() {
            self.advance_cpu_seconds(cpu_seconds(stat.utime, stat.stime));
            self.virtual_memory.set(gauge_value(stat.vsize));
            self.resident_memory
                .set(gauge_value(stat.rss.saturating_mul(procfs::page_size())));
            self.threads.set(stat.num_threads);
            families.extend(self.cpu_seconds.collect());
            families.extend(self.virtual_memory.collect());
            families.extend(self.resident_memory.collect());
            families.extend(self.threads.collect());
        }
        if let Ok(count) = process.fd_count() {
            self.open_fds.set(gauge_value(count as u64));
            families.extend(self.open_fds.collect());
        }
        if let Ok(limits) = process.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            self.max_fds.set(gauge_value(max));
            families.extend(self.max_fds.collect());
        }
        if self.start_time.get() > 0.0 {
            families.extend(self.start_time.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use prometheus::{Encoder, Registry, TextEncoder};

    use super::*;

    /// The value of the unlabelled sample `name` in the text exposition of `registry`.
    fn sample(registry: &Registry, name: &str) -> f64 {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .expect("encode");
        let text = String::from_utf8(text).expect("utf-8");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .parse()
            .expect("a number")
    }

    /// Spins on this thread until it has used `cpu` of CPU time (by the collector's own clock).
    fn burn_cpu(cpu: Duration) {
        let start = ProcessCollector::cpu_seconds_now().expect("/proc/self/stat");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut x: u64 = 1;
        while ProcessCollector::cpu_seconds_now().expect("/proc/self/stat") - start
            < cpu.as_secs_f64()
            && Instant::now() < deadline
        {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        std::hint::black_box(x);
    }

    #[test]
    fn cpu_seconds_rise_by_fractions_of_a_second() {
        let registry = Registry::new();
        registry
            .register(Box::new(ProcessCollector::for_self().expect("collector")))
            .expect("register");
        let before = sample(&registry, "process_cpu_seconds_total");
        burn_cpu(Duration::from_millis(50));
        let after = sample(&registry, "process_cpu_seconds_total");
        let increase = after - before;
        eprintln!("process_cpu_seconds_total: {before} -> {after} (+{increase:.3} s)");
        assert!(
            (0.04..1.0).contains(&increase),
            "~50 ms of CPU shows as {increase} s"
        );
        assert!(
            increase.fract() > 0.0,
            "the increase {increase} is whole seconds: truncated"
        );
    }

    #[test]
    fn every_process_metric_is_exported() {
        let registry = Registry::new();
        registry
            .register(Box::new(ProcessCollector::for_self().expect("collector")))
            .expect("register");
        for name in METRIC_NAMES {
            let value = sample(&registry, name);
            if name != "process_cpu_seconds_total" {
                assert!(value > 0.0, "{name} = {value}");
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        let started = sample(&registry, "process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0 * 365.0,
            "start {started}, now {now}"
        );
        assert!(
            sample(&registry, "process_open_fds") <= sample(&registry, "process_max_fds"),
            "open fds above the limit"
        );
    }
}
