//! Property: reassembling the packetizer's payloads gives back the frame, for random frame sizes,
//! MTUs, starting sequence numbers and arrival orders within a frame.

use proptest::prelude::*;

use call_client::media::Vp8Reassembler;
use call_client::media::rtp::VP8_DESCRIPTOR_LEN;

use super::{packets, reassemble};

proptest! {
    #[test]
    fn depacketize_of_packetize_is_the_frame(
        sizes in prop::collection::vec(0usize..6000, 1..6),
        max_payload in (VP8_DESCRIPTOR_LEN + 1)..1500,
        first_seq in any::<u16>(),
        fill in any::<u8>(),
        rotate in any::<usize>(),
    ) {
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(n, &len)| (0..len + 1).map(|i| (i as u8) ^ fill ^ n as u8).collect())
            .collect();
        let mut sent = packets(&frames, first_seq, max_payload);
        let chunk = max_payload - VP8_DESCRIPTOR_LEN;
        let want_packets: usize = frames.iter().map(|f| f.len().div_ceil(chunk)).sum();
        prop_assert_eq!(sent.len(), want_packets);
        prop_assert!(sent.iter().all(|p| p.payload.len() <= max_payload));
        // The packets of each frame after the first arrive rotated (any order within a frame).
        let mut start = 0;
        for (n, f) in frames.iter().enumerate() {
            let count = f.len().div_ceil(chunk);
            if n > 0 {
                sent[start..start + count].rotate_left(rotate % count);
            }
            start += count;
        }
        let mut r = Vp8Reassembler::new();
        let got = reassemble(&mut r, &sent);
        prop_assert_eq!(got, frames);
        prop_assert_eq!(r.counts().incomplete_frames, 0);
    }
}
