//! What the SFU spent on a run: CPU seconds and peak memory of its process, and the packets it
//! forwarded according to its own `/metrics`, measured over the run only (start-up and joins
//! before [`SfuCostMeter::start`] are not counted).
//!
//! Packets forwarded is the growth of `sfu_packets_sent_total` (all `kind`s and `type`s, so
//! retransmissions count: they are work the SFU did) between the two scrapes.

use std::time::Duration;

use thiserror::Error;

use crate::metrics_scrape::{ScrapeError, scrape};
use crate::process_usage::{CpuMeter, ProcessUsageError};
use crate::report::Report;

/// The counter of RTP packets the SFU sent to subscribers (docs/metrics.md).
pub const PACKETS_SENT_METRIC: &str = "sfu_packets_sent_total";

/// Timeout of one `/metrics` scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the SFU's cost could not be measured.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SfuCostError {
    /// Reading the SFU process from `/proc` failed.
    #[error("SFU process: {0}")]
    Process(#[from] ProcessUsageError),
    /// Scraping the SFU's `/metrics` failed.
    #[error("SFU metrics: {0}")]
    Scrape(#[from] ScrapeError),
    /// The page has no `sfu_packets_sent_total`.
    #[error("SFU metrics have no {PACKETS_SENT_METRIC}")]
    MissingCounter,
}

/// The SFU's cost over a run. Each part is `None` when its source was not given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SfuCost {
    /// CPU seconds of the SFU process during the run.
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the SFU process (whole life, VmHWM).
    pub peak_rss_bytes: Option<u64>,
    /// Packets the SFU sent to subscribers during the run.
    pub packets_forwarded: Option<u64>,
}

impl SfuCost {
    /// Copies the measured parts into `report`.
    pub fn apply_to(&self, report: &mut Report) {
        if let (Some(cpu), Some(peak), Some(forwarded)) = (
            self.cpu_seconds,
            self.peak_rss_bytes,
            self.packets_forwarded,
        ) {
            report.set_sfu_cost(cpu, peak, forwarded);
            return;
        }
        report.sfu_cpu_seconds = self.cpu_seconds;
        report.sfu_peak_rss_bytes = self.peak_rss_bytes;
        report.packets_forwarded = self.packets_forwarded;
    }
}

/// Measures the SFU between [`SfuCostMeter::start`] and [`SfuCostMeter::finish`].
#[derive(Debug)]
pub struct SfuCostMeter {
    cpu: Option<CpuMeter>,
    metrics_url: Option<String>,
    sent_at_start: f64,
}

fn packets_sent(url: &str) -> Result<f64, SfuCostError> {
    scrape(url, SCRAPE_TIMEOUT)?
        .sum(PACKETS_SENT_METRIC, &[])
        .ok_or(SfuCostError::MissingCounter)
}

impl SfuCostMeter {
    /// Starts measuring the SFU process `pid` (if known) and its `/metrics` at `metrics_url`
    /// (if known).
    pub fn start(pid: Option<u32>, metrics_url: Option<&str>) -> Result<Self, SfuCostError> {
        let cpu = pid.map(CpuMeter::start).transpose()?;
        let sent_at_start = match metrics_url {
            Some(url) => packets_sent(url)?,
            None => 0.0,
        };
        Ok(SfuCostMeter {
            cpu,
            metrics_url: metrics_url.map(str::to_owned),
            sent_at_start,
        })
    }

    /// Reads the SFU's cost since `start`. Call it before stopping the SFU.
    pub fn finish(&self) -> Result<SfuCost, SfuCostError> {
        let (cpu_seconds, peak_rss_bytes) = match &self.cpu {
            Some(meter) => {
                let (cpu, usage) = meter.elapsed()?;
                (Some(cpu), Some(usage.peak_rss_bytes))
            }
            None => (None, None),
        };
        let packets_forwarded = match &self.metrics_url {
            // A counter that went backwards means the SFU restarted; report the growth since
            // the restart rather than a negative number.
            Some(url) => {
                let now = packets_sent(url)?;
                let grown = if now >= self.sent_at_start {
                    now - self.sent_at_start
                } else {
                    now
                };
                Some(grown.round() as u64)
            }
            None => None,
        };
        Ok(SfuCost {
            cpu_seconds,
            peak_rss_bytes,
            packets_forwarded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Scenario;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::process::{Command, Stdio};

    /// Serves the given pages, one per request, as a Prometheus endpoint would.
    fn metrics_server(pages: Vec<String>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            for page in pages {
                let (mut conn, _) = listener.accept().unwrap();
                let mut req = [0u8; 1024];
                let _ = conn.read(&mut req);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
            }
        });
        (url, handle)
    }

    fn page(audio: u64, video: u64, rtx: u64) -> String {
        format!(
            "# TYPE sfu_packets_sent_total counter\n\
             sfu_packets_sent_total{{kind=\"audio\",type=\"initial\"}} {audio}\n\
             sfu_packets_sent_total{{kind=\"video\",type=\"initial\"}} {video}\n\
             sfu_packets_sent_total{{kind=\"video\",type=\"retransmit\"}} {rtx}\n"
        )
    }

    #[test]
    fn measures_a_real_process_and_counter_growth() {
        let (url, server) = metrics_server(vec![page(100, 1000, 5), page(600, 9000, 45)]);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let meter = SfuCostMeter::start(Some(child.id()), Some(&url)).unwrap();
        // Wait (bounded) until the spin loop has visibly used CPU.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while crate::process_usage::read_process_usage(child.id())
            .unwrap()
            .cpu_seconds
            < 0.05
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let cost = meter.finish().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        server.join().unwrap();
        assert_eq!(cost.packets_forwarded, Some(500 + 8000 + 40));
        let cpu = cost.cpu_seconds.unwrap();
        assert!(cpu > 0.0 && cpu < 1.0, "{cpu}");
        assert!(cost.peak_rss_bytes.unwrap() > 0);
        let mut report = Report::new(Scenario::Meeting);
        cost.apply_to(&mut report);
        assert_eq!(report.packets_forwarded, Some(8540));
        assert_eq!(report.forwarded_packets_per_cpu_second, Some(8540.0 / cpu));
    }

    #[test]
    fn unknown_sources_stay_unmeasured() {
        let meter = SfuCostMeter::start(None, None).unwrap();
        let cost = meter.finish().unwrap();
        assert_eq!(
            cost,
            SfuCost {
                cpu_seconds: None,
                peak_rss_bytes: None,
                packets_forwarded: None
            }
        );
        let mut report = Report::new(Scenario::Broadcast);
        cost.apply_to(&mut report);
        assert_eq!(report.forwarded_packets_per_cpu_second, None);
    }

    #[test]
    fn a_page_without_the_counter_is_an_error() {
        let (url, server) = metrics_server(vec!["other_metric 1\n".to_owned()]);
        let err = SfuCostMeter::start(None, Some(&url)).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, SfuCostError::MissingCounter));
    }
}
