//! A viewer (no publish grant) cannot get the SFU to accept an SDP in which it could send: a
//! real receive-only offer from a WebRTC client (the `webrtc` crate) is edited into the variants
//! an outside tester used, each sent to the running service with an embedded SFU and refused
//! with `forbidden` (counted), while the clean offer is answered.

use crate::common;
use call_client::peer::{Peer, RtpCodecKind};

use common::{TestServer, config, token};
use serde_json::json;
use signaling::policy::Role;

/// `sdp` with `from` replaced by `to` in its first media section of `kind` only.
fn in_section(sdp: &str, kind: &str, from: &str, to: &str) -> String {
    let start = sdp.find(&format!("m={kind} ")).expect("section present");
    let end = sdp[start + 2..]
        .find("\r\nm=")
        .map_or(sdp.len(), |i| start + 2 + i + 2);
    let section = sdp[start..end].replacen(from, to, 1);
    assert_ne!(
        section,
        sdp[start..end],
        "{from:?} found in the {kind} section"
    );
    format!("{}{section}{}", &sdp[..start], &sdp[end..])
}

#[tokio::test]
async fn viewer_sendonly_sdp_variants_refused() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "bc", "kind": "broadcast"}))
        .await;
    let mut v = s.connect().await;
    v.join("bc", &token("bc", "watcher", Role::Viewer), "viewer")
        .await;
    let peer = Peer::builder()
        .build()
        .await
        .expect("client peer connection builds");
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        peer.add_recvonly(kind).await.expect("recvonly transceiver");
    }
    let clean = peer.offer().await.expect("offer");
    assert!(clean.contains("a=recvonly") && !clean.contains("a=sendonly"));

    let port_zero_bundle_only = format!(
        "{clean}m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:9\r\na=bundle-only\r\na=sendonly\r\n\
         a=rtpmap:96 VP8/90000\r\n"
    );
    let variants = [
        (
            "sendonly then recvonly",
            in_section(&clean, "video", "a=recvonly", "a=sendonly\r\na=recvonly"),
        ),
        (
            "recvonly then sendonly",
            in_section(&clean, "audio", "a=recvonly", "a=recvonly\r\na=sendonly"),
        ),
        (
            "sendrecv",
            in_section(&clean, "video", "a=recvonly", "a=sendrecv"),
        ),
        (
            "no direction",
            in_section(&clean, "audio", "a=recvonly\r\n", ""),
        ),
        ("port 0 bundle-only sendonly", port_zero_bundle_only),
        (
            "recvonly with a send track",
            in_section(
                &clean,
                "video",
                "a=recvonly",
                "a=recvonly\r\na=msid:stream camera\r\na=ssrc:1234 msid:stream camera",
            ),
        ),
        (
            "session-level sendonly, section without direction",
            in_section(&clean, "video", "a=recvonly\r\n", "").replacen(
                "\r\nm=",
                "\r\na=sendonly\r\nm=",
                1,
            ),
        ),
    ];
    for (what, sdp) in &variants {
        v.send(&json!({"type": "offer", "sdp": sdp})).await;
        let error = v.expect_error("forbidden").await;
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains("can send"), "{what}: {message}");
    }
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"sdp_sends_without_grant\"}")
            .await,
        variants.len() as f64
    );

    // The clean receive-only offer is answered by the SFU.
    v.send(&json!({"type": "offer", "sdp": clean})).await;
    let answer = v.recv_type("answer").await;
    assert!(
        answer["sdp"]
            .as_str()
            .is_some_and(|s| s.contains("m=video"))
    );

    // An answer (to a later SFU offer) is judged the same way.
    v.send(&json!({"type": "answer", "sdp": variants[0].1}))
        .await;
    v.expect_error("forbidden").await;
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"sdp_sends_without_grant\"}")
            .await,
        variants.len() as f64 + 1.0
    );
}
