//! `stats` from a real WebSocket client cannot inflate `signaling_client_decrypt_failures_total`:
//! a report claiming more frames than the device can have received is refused whole, and a burst
//! of reports is cut to the `stats` rate; each refusal is an `error` to the client and counted.

use crate::common;

use std::time::Instant;

use common::{TestServer, config, token};
use serde_json::json;
use signaling::policy::Role;
use signaling::protocol::{MAX_FRAMES_PER_SECOND, STATS_BURST, STATS_PER_SECOND};

const COUNTER: &str = "signaling_client_decrypt_failures_total";

#[tokio::test]
async fn stats_cannot_inflate_decrypt_failures() {
    let s = TestServer::start(config()).await;
    s.meeting("st").await;
    let joined_at = Instant::now();
    let mut a = s.connect().await;
    a.join("st", &token("st", "liar", Role::Caller), "dev-a")
        .await;
    let before = s.metric(COUNTER).await;

    a.send(&json!({"type": "stats", "decrypt_failures": 1_000_000, "frames_decrypted": 0}))
        .await;
    let refused = a.expect_error("malformed").await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("decrypt_failures"), "{message}");

    // A burst of plausible reports, then a probe whose answer shows all of them were handled.
    const BURST: u32 = 20;
    const EACH: u64 = 100;
    for _ in 0..BURST {
        a.send(&json!({"type": "stats", "decrypt_failures": EACH, "frames_decrypted": 0}))
            .await;
    }
    a.send(&json!({"type": "key_request", "to": "dev-nobody"}))
        .await;
    let mut too_frequent = 0u32;
    loop {
        let v = a.recv().await;
        assert_eq!(v["type"], "error", "{v}");
        match v["code"].as_str() {
            Some("not_in_roster") => break,
            Some("rate_limited") => too_frequent += 1,
            other => panic!("unexpected error {other:?}: {v}"),
        }
    }
    let elapsed = joined_at.elapsed().as_secs_f64();
    let accepted = BURST - too_frequent;
    // The refused report took one of the burst; the rest of the burst plus what the time let in.
    let most_accepted = STATS_BURST - 1 + (elapsed * f64::from(STATS_PER_SECOND)).ceil() as u32;
    assert!(
        (1..=most_accepted).contains(&accepted),
        "{accepted} of {BURST} reports accepted in {elapsed:.2} s"
    );

    let added = s.metric(COUNTER).await - before;
    assert_eq!(
        added,
        (u64::from(accepted) * EACH) as f64,
        "only accepted reports count"
    );
    let bound = MAX_FRAMES_PER_SECOND as f64 * (1.0 + elapsed);
    assert!(added <= bound, "moved by {added}, bound {bound}");
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"stats_out_of_bounds\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"stats_too_frequent\"}")
            .await,
        f64::from(too_frequent)
    );
    // The room keeps the last accepted report, not the refused one.
    let detail: serde_json::Value = s
        .http
        .get(s.url("/v1/rooms/st"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("inspect")
        .json()
        .await
        .expect("json");
    assert_eq!(
        detail["participants"][0]["client_stats"]["decrypt_failures"],
        EACH
    );
}
