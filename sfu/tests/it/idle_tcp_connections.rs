//! Idle TCP connections cannot exhaust the `sfu` binary's descriptors or its HTTP port: with a
//! cap of 50 connections and a 1 s header-read timeout, 200 connections that never send a byte
//! are closed (those over the cap at once, the rest after the timeout), the process never holds
//! more than the cap's worth of extra descriptors, `/healthz` answers again within the timeout,
//! and both closes are counted.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use crate::common::poll_until;
use crate::common::sfu_process::{SfuProcess, metric, scrape};

const CAP: usize = 50;
const IDLE: usize = 200;

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Whether the server closed `stream` (a read sees the end or a reset).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_idle_tcp_connections_do_not_exhaust_descriptors() {
    let node = SfuProcess::start(&[
        ("SFU_HTTP_MAX_CONNECTIONS", "50"),
        ("SFU_HTTP_HEADER_TIMEOUT_SECONDS", "1"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let base = node.base();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client builds");
    let baseline = open_descriptors(node.pid());

    // 200 connections that say nothing.
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| {
            let stream = TcpStream::connect(("127.0.0.1", node.http)).expect("connects");
            stream.set_nonblocking(true).expect("non-blocking");
            stream
        })
        .collect();
    let mut peak = 0;
    poll_until(
        Duration::from_secs(5),
        "every idle connection closed",
        async || {
            peak = peak.max(open_descriptors(node.pid()));
            idle.iter_mut().all(closed_by_server)
        },
    )
    .await;
    assert!(
        peak <= baseline + CAP + 10,
        "descriptors peaked at {peak} (baseline {baseline}, cap {CAP})"
    );

    // The port serves again.
    poll_until(Duration::from_secs(3), "/healthz after the idle flood", async || {
        matches!(http.get(format!("{base}/healthz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;

    let metrics = scrape(&http, &base).await;
    let limit = metric(
        &metrics,
        r#"sfu_http_connections_closed_total{reason="connection_limit"}"#,
    )
    .unwrap_or(0.0);
    let timeout = metric(
        &metrics,
        r#"sfu_http_connections_closed_total{reason="header_timeout"}"#,
    )
    .unwrap_or(0.0);
    // At least 150 over the cap when all 200 arrive within the timeout; on a loaded machine
    // some in-cap ones may time out (and free their slot) before the last arrive.
    assert!(limit >= 1.0, "closed over the cap: {limit}");
    assert!(timeout >= 1.0, "closed by the header timeout: {timeout}");
    assert!(
        limit + timeout >= IDLE as f64,
        "every idle connection counted: {limit} + {timeout}"
    );
    assert!(
        metric(&metrics, "sfu_http_connections").unwrap_or(f64::MAX) <= 2.0,
        "no idle connection left open"
    );
}
