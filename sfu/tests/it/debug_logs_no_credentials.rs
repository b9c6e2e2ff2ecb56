//! The `sfu` binary logging at `debug` (its own crates at `trace` would be too much per packet,
//! by design) writes no ICE credential: a real client connects through the control API and
//! neither its `a=ice-pwd` nor the SFU's own appears in any log line; and the number of debug
//! lines does not grow with the packets the client sends.

use std::time::Duration;

use crate::common::peers::{accept_answer, publisher};
use crate::common::poll_until;
use crate::common::sfu_process::SfuProcess;

/// The value of the first `a=<name>:` line of `sdp`.
fn attribute(sdp: &str, name: &str) -> String {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} in the SDP"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_contain_no_ice_password() {
    let node = SfuProcess::start(&[("RUST_LOG", "debug")]).await;
    let http = reqwest::Client::new();
    node.create_room(&http, "r1").await;

    let (publisher, mut video) = publisher().await;
    let offer = publisher.offer().await.expect("offer");
    let client_pwd = attribute(&offer, "ice-pwd");
    let answer = node.add_caller(&http, "r1", "d1", &offer).await;
    let sfu_pwd = attribute(&answer, "ice-pwd");
    accept_answer(&publisher, &answer, "the client").await;

    // Media flows; count the lines of two equal stretches of it, 50 and then 500 packets.
    let mut sent = 0u32;
    let mut stretch = async |packets: u32| {
        let before = node.lines().len();
        for _ in 0..packets {
            video
                .write_next(&[0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00])
                .await
                .expect("rtp written");
            sent += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        node.lines().len() - before
    };
    let few = stretch(50).await;
    let many = stretch(500).await;
    // Let the last lines reach the capture.
    let total = node.lines().len();
    poll_until(Duration::from_secs(2), "the log to settle", async || {
        tokio::time::sleep(Duration::from_millis(200)).await;
        node.lines().len() == total
    })
    .await;

    let lines = node.lines();
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")),
        "the node logs at debug level"
    );
    // rtc-ice's debug line about starting the checks is there (it carried the password before
    // the vendored fix), so the log does include the ICE code's debug output.
    assert!(
        lines.iter().any(|l| l.contains("Started agent")),
        "rtc-ice's debug lines are captured"
    );
    assert!(
        many < 50,
        "{many} log lines while sending 500 packets ({few} for 50): per-packet logging"
    );
    for line in &lines {
        assert!(
            !line.contains(&client_pwd),
            "the client's ICE password logged: {line}"
        );
        assert!(
            !line.contains(&sfu_pwd),
            "the SFU's ICE password logged: {line}"
        );
    }
    assert_eq!(sent, 550);
    publisher.close().await;
}
