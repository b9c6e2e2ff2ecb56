//! The peer against a second peer on loopback: offers are loopback-only and announce the
//! simulcast layers, and media published by one arrives at the other tagged with its mid.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn layers() -> Vec<VideoLayer> {
    vec![
        VideoLayer::simulcast("q", 11),
        VideoLayer::simulcast("h", 12),
        VideoLayer::simulcast("f", 13),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_is_loopback_only_and_announces_three_rids() {
    let peer = Peer::builder()
        .simulcast_extensions()
        .default_interceptors()
        .build()
        .await
        .expect("peer builds");
    let audio = peer.add_audio("mic", 10).await.expect("audio added");
    let video = peer.add_video("cam", &layers()).await.expect("video added");
    assert_eq!(video.mid(), None, "no mid before the offer");
    let sdp = peer.offer().await.expect("offer");
    assert_eq!(audio.mid(), Some("0"));
    assert_eq!(video.mid(), Some("1"));
    for rid in ["q", "h", "f"] {
        assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
    }
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty());
    assert!(
        candidates
            .iter()
            .all(|c| c.contains(" 127.0.0.1 ") && c.contains(" udp ")),
        "{candidates:?}"
    );
    assert!(!sdp.contains(".local"), "no mDNS candidates");
    peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_audio_and_video_arrive_at_the_other_peer_with_their_mids() {
    let sender = Peer::builder()
        .audio_level()
        .build()
        .await
        .expect("sender builds");
    let mut audio = sender.add_audio("mic", 0x0a0a).await.expect("audio added");
    let mut video = sender
        .add_video("cam", &[VideoLayer::single(0x0b0b)])
        .await
        .expect("video added");
    let mut receiver = Peer::builder()
        .audio_level()
        .build()
        .await
        .expect("receiver builds");
    let offer = sender.offer().await.expect("offer");
    let answer = receiver.answer(&offer).await.expect("answer");
    sender.apply_answer(&answer).await.expect("answer applies");
    sender
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("sender connects");
    receiver
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("receiver connects");
    audio.set_audio_level(Some((true, 30)));

    let (mut got_audio, mut got_video) = (None, None);
    for i in 0..200u8 {
        audio.write_next(&[0x78, i]).await.expect("audio written");
        video
            .write_next(&[0x10, 0x10, 0x02, 0x00, i])
            .await
            .expect("video written");
        tokio::time::sleep(Duration::from_millis(10)).await;
        while let Ok(packet) = receiver.incoming().try_recv() {
            match packet.kind {
                RtpCodecKind::Audio => got_audio = Some(packet),
                _ => got_video = Some(packet),
            }
        }
        if got_audio.is_some() && got_video.is_some() {
            break;
        }
    }
    let (audio_in, video_in) = (
        got_audio.expect("audio arrives"),
        got_video.expect("video arrives"),
    );
    assert_eq!(audio_in.mid.as_deref(), audio.mid());
    assert_eq!(video_in.mid.as_deref(), video.mid());
    assert_eq!(audio_in.packet.header.payload_type, OPUS_PT);
    assert_eq!(video_in.packet.header.ssrc, 0x0b0b);
    assert_eq!(
        vp8_frame_bytes(&video_in.packet.payload)[..3],
        [0x10, 0x02, 0x00]
    );
    let level_id = extmap_id(&offer, AUDIO_LEVEL_URI).expect("audio level offered");
    assert_eq!(
        audio_in.packet.header.get_extension(level_id),
        Some(Bytes::from_static(&[0x80 | 30])),
        "the audio level travels with the audio"
    );
    sender.close().await;
    receiver.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_slot_sections_offer_only_the_slot_codecs_and_fit_the_sdp_cap() {
    let peer = Peer::builder().build().await.expect("peer builds");
    peer.add_audio("mic", 10).await.expect("audio added");
    peer.add_video("cam", &[VideoLayer::single(11)])
        .await
        .expect("video added");
    // The default meeting's slots: 4 audio, 25 video and 2 screen.
    peer.add_receive_slots(4, 27)
        .await
        .expect("receive sections added");
    let sdp = peer.offer().await.expect("offer");
    let sections: Vec<&str> = sdp.split("\nm=").skip(1).collect();
    assert_eq!(sections.len(), 2 + 4 + 27);
    let receiving: Vec<&&str> = sections
        .iter()
        .filter(|s| s.contains("a=recvonly"))
        .collect();
    assert_eq!(receiving.len(), 31);
    for section in receiving {
        let formats: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .map(|l| l.split_once(' ').map_or(l, |(_, f)| f.trim_end()))
            .collect();
        assert!(
            formats == ["opus/48000/2"] || formats == ["VP8/90000", "rtx/90000"],
            "a slot section offers only the slot codec: {formats:?}"
        );
    }
    assert!(
        sdp.len() <= crate::protocol::MAX_SDP_BYTES,
        "the offer ({} bytes) fits the protocol's SDP cap",
        sdp.len()
    );
    peer.close().await;
}
