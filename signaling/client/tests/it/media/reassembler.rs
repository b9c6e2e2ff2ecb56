//! `Vp8Reassembler`: frames in order, a bounded wait for late packets, losses counted.

use call_client::media::{PayloadError, ReassemblerCounts, Vp8Reassembler};

use super::{frame, packets, reassemble};

/// Frames of 1, 2 and 3 packets at a 1200-byte MTU: a keyframe first, then delta frames.
fn stream(frames: usize) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|n| frame(if n == 0 { 0x10 } else { 0x11 }, 500 + 1100 * (n % 3)))
        .collect()
}

#[test]
fn reassembler_emits_frames_in_order_despite_reordering() {
    let frames = stream(6);
    let mut sent = packets(&frames, 65_530, 1200); // sequence numbers wrap inside the run
    assert_eq!(sent.len(), 12);
    // After the first frame (where the stream starts for the receiver), every run of four
    // packets comes backwards: frames' packets arrive last first, and later frames complete
    // before earlier ones.
    for run in sent[1..].chunks_mut(4) {
        run.reverse();
    }
    let mut r = Vp8Reassembler::new();
    let got = reassemble(&mut r, &sent);
    assert_eq!(got, frames);
    let counts = r.counts();
    assert_eq!(
        counts,
        ReassemblerCounts {
            frames: 6,
            keyframes: 1,
            incomplete_frames: 0,
            ignored_packets: 0,
        }
    );
}

#[test]
fn reassembler_counts_a_lost_packet_as_an_incomplete_frame() {
    let window = 4;
    let frames = stream(12);
    let mut sent = packets(&frames, 100, 1200);
    // Frame 1 has two packets; its second never comes.
    let lost = sent
        .iter()
        .position(|p| p.timestamp == 3000 && p.marker)
        .unwrap();
    sent.remove(lost);
    let mut r = Vp8Reassembler::with_window(window);
    let got = reassemble(&mut r, &sent);
    // Frame 0 goes out, frames 2.. wait behind the gap until more than the window is held,
    // then frame 1 is given up and the rest go out in order.
    let mut want = frames.clone();
    want.remove(1);
    assert_eq!(got, want);
    assert_eq!(r.counts().incomplete_frames, 1);
    assert_eq!(r.counts().frames, 11);
    // The lost packet arriving now is too late: ignored, nothing handed out twice.
    let late = packets(&frames, 100, 1200).remove(lost);
    r.push(late.seq, late.timestamp, late.marker, &late.payload)
        .unwrap();
    assert!(r.next_frame().is_none());
    assert_eq!(r.counts().ignored_packets, 1);
}

#[test]
fn a_late_packet_within_the_window_completes_its_frame_and_nothing_is_lost() {
    let frames = stream(8);
    let mut sent = packets(&frames, 0, 1200);
    // Frame 2's first packet comes after three more frames (a retransmission).
    let i = sent.iter().position(|p| p.timestamp == 6000).unwrap();
    let late = sent.remove(i);
    let at = sent.iter().position(|p| p.timestamp == 5 * 3000).unwrap();
    sent.insert(at, late);
    let mut r = Vp8Reassembler::new();
    assert_eq!(reassemble(&mut r, &sent), frames);
    assert_eq!(r.counts().incomplete_frames, 0);
}

#[test]
fn a_wholly_lost_frame_is_given_up_once_the_window_is_full() {
    let window = 3;
    let frames = stream(10);
    let sent: Vec<_> = packets(&frames, 500, 1200)
        .into_iter()
        .filter(|p| p.timestamp != 2 * 3000)
        .collect();
    let mut r = Vp8Reassembler::with_window(window);
    let got = reassemble(&mut r, &sent);
    let mut want = frames.clone();
    want.remove(2);
    assert_eq!(got, want);
    assert_eq!(r.counts().incomplete_frames, 1);
}

#[test]
fn duplicates_are_ignored_and_bad_payloads_refused() {
    let frames = stream(3);
    let sent = packets(&frames, 7, 1200);
    let twice: Vec<_> = sent.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
    let mut r = Vp8Reassembler::new();
    assert_eq!(reassemble(&mut r, &twice), frames);
    assert_eq!(r.counts().ignored_packets, sent.len() as u64);
    assert_eq!(
        r.push(1, 0, true, &[0x90, 0x80]),
        Err(PayloadError::Truncated)
    );
    assert_eq!(
        r.push(1, 0, true, &[0x90, 0x80, 0x80, 0x01]),
        Err(PayloadError::Empty)
    );
}

#[test]
fn keyframes_are_detected_from_the_clear_frame_tag() {
    let frames = vec![frame(0x10, 50), frame(0x11, 50), frame(0x00, 50)];
    let mut r = Vp8Reassembler::new();
    let mut keys = Vec::new();
    for p in packets(&frames, 0, 1200) {
        r.push(p.seq, p.timestamp, p.marker, &p.payload).unwrap();
        while let Some(f) = r.next_frame() {
            keys.push((f.timestamp, f.keyframe));
        }
    }
    assert_eq!(keys, [(0, true), (3000, false), (6000, true)]);
    assert_eq!(r.counts().keyframes, 2);
}

#[test]
fn a_restarted_stream_is_followed_after_a_sequence_jump_backwards() {
    let frames = stream(4);
    let mut r = Vp8Reassembler::new();
    assert_eq!(reassemble(&mut r, &packets(&frames, 40_000, 1200)), frames);
    // A sender that started over: sequence numbers far behind, timestamps from 0 again.
    assert_eq!(reassemble(&mut r, &packets(&frames, 30_000, 1200)), frames);
}
