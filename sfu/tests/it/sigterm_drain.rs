//! SIGTERM drains the `sfu` binary within its drain timeout although a control client holds
//! the event stream open and a participant stays: the stream ends at drain start, `/healthz`
//! answers 200 `draining` and `/readyz` 503 throughout, and the process exits 0 by the
//! timeout plus a small margin.

use std::time::{Duration, Instant};

use crate::common::peers::publisher;
use crate::common::poll_until;
use crate::common::sfu_process::{SECRET, SfuProcess};

const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Process exit after the drain: the runtime shutting down, no more.
const MARGIN: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_sigterm_drains_within_timeout() {
    let mut node =
        SfuProcess::start(&[("SFU_DRAIN_TIMEOUT_SECONDS", "3"), ("RUST_LOG", "info")]).await;
    let base = node.base();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client builds");

    // A control client holding the event stream open (no timeout on it).
    let streaming = reqwest::Client::new();
    let mut events = streaming
        .get(format!("{base}/control/events"))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("event stream opens");
    assert_eq!(events.status(), 200);

    // A participant that stays for the whole drain (it never connects; the connect timeout is
    // 15 s, longer than the drain).
    node.create_room(&http, "r1").await;
    let (peer, _video) = publisher().await;
    node.add_caller(&http, "r1", "d1", &peer.offer().await.expect("offer"))
        .await;

    node.sigterm();
    let signalled = Instant::now();

    // The event stream ends at drain start.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ended at drain start");

    // During the drain: /healthz 200 "draining", /readyz 503.
    let mut probes = 0;
    while signalled.elapsed() < DRAIN_TIMEOUT - Duration::from_millis(1200) {
        let health = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("/healthz answers during the drain");
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.expect("body"), "draining");
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("/readyz answers during the drain");
        assert_eq!(ready.status(), 503);
        probes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(probes >= 3, "probed during the drain ({probes} times)");

    // Exit 0 within the timeout and the margin.
    let mut status = None;
    poll_until(DRAIN_TIMEOUT + MARGIN, "the sfu to exit", async || {
        status = node.exited();
        status.is_some()
    })
    .await;
    let took = signalled.elapsed();
    assert!(status.expect("exited").success(), "exit status {status:?}");
    assert!(
        took <= DRAIN_TIMEOUT + MARGIN,
        "drain took {took:?}, timeout {DRAIN_TIMEOUT:?}"
    );
    assert!(
        took >= DRAIN_TIMEOUT / 2,
        "the drain waited for the participant ({took:?})"
    );
    let lines = node.lines();
    assert!(
        lines.iter().any(|l| l.contains("drained; stopping")),
        "the drain ran: {lines:?}"
    );
}
