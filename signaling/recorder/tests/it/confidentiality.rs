//! Nothing the recorder stores can be read without the organization's key: no media bytes, no
//! room or participant names, in the files, their names or the plaintext chain.

use std::time::Duration;

use recorder::archive::ArchiveError;
use recorder::archive::export::export;
use recorder::archive::seal::OrgIdentity;
use recorder::archive::store::LocalStore;

use crate::common::{ALICE, BOB, Fixture, Media, ROOM, blobs};

/// Shannon entropy of `data`, bits per byte.
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn offsets(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Where plaintext byte `at` lands in an age file: after the header (up to the `---` line's
/// end), the 16-byte nonce, and a 16-byte tag per 64 KiB chunk before it.
fn sealed_offset(sealed: &[u8], at: usize) -> usize {
    let mac_line = offsets(sealed, b"\n--- ")[0] + 1;
    let header_end = mac_line + sealed[mac_line..].iter().position(|&b| b == b'\n').unwrap() + 1;
    header_end + 16 + at + 16 * (at / 65_536)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn archive_files_hold_no_plaintext() {
    let fixture = Fixture::new();
    let media = Media::new(2);
    let summary = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let files = blobs(&fixture.session_dir(&summary.session_id));
    assert_eq!(files.len(), 3);

    // The plaintext WebM files, to know where the frames sit in them.
    let out_dir = fixture.dir.path().join("export");
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let exported = export(&store, &fixture.org, None, &summary.session_id, &out_dir).unwrap();
    let audio_plain = std::fs::read(&exported.files[0]).unwrap();
    let video_plain = std::fs::read(&exported.files[1]).unwrap();
    let keyframe_offsets = offsets(&video_plain, &[0x9d, 0x01, 0x2a]);
    assert!(
        !keyframe_offsets.is_empty(),
        "the plaintext has VP8 keyframes"
    );
    // Where each Opus packet (its TOC byte and the 7 after it) sits in the plaintext.
    let opus_offsets: Vec<(usize, &[u8])> = media
        .opus
        .iter()
        .filter(|p| p.len() >= 8)
        .filter_map(|p| {
            offsets(&audio_plain, &p[..8])
                .first()
                .map(|&at| (at, &p[..8]))
        })
        .collect();
    assert_eq!(
        opus_offsets.len(),
        media.opus.len(),
        "every Opus packet is in the file"
    );

    let names = [
        ROOM,
        ALICE,
        BOB,
        "alice-laptop",
        "bob-phone",
        "alice-mic-track",
        "board",
    ];
    for (name, data) in &files {
        for needle in names {
            assert!(!name.contains(needle), "file name {name} names {needle}");
            assert!(
                !contains(data, needle.as_bytes()),
                "{name} holds {needle:?}"
            );
        }
        assert!(
            data.starts_with(b"age-encryption.org/v1\n"),
            "{name} is an age file"
        );
        assert!(!contains(data, b"OpusHead"), "{name} holds an Opus header");
        assert!(!contains(data, b"webm"), "{name} holds the WebM doctype");
        assert!(
            !contains(data, &[0x1a, 0x45, 0xdf, 0xa3]),
            "{name} holds an EBML header"
        );
        // No media frame appears whole (its first 16 bytes, for frames that long).
        for frame in media
            .opus
            .iter()
            .chain(&media.vp8)
            .filter(|f| f.len() >= 16)
        {
            assert!(
                !contains(data, &frame[..16]),
                "{name} holds a frame's bytes"
            );
        }
        // Past the age header: as random as bytes get (the small manifest's estimate is biased
        // low by its few samples).
        let body = &data[200..];
        let floor = if body.len() >= 10_000 { 7.95 } else { 7.5 };
        let e = entropy(body);
        assert!(e > floor, "{name}: {e} bits per byte");
    }
    // At the offsets where the plaintext has them (shifted by the age header and the STREAM
    // tags, or not), the ciphertext has neither VP8 start codes nor the Opus packets.
    let (audio_sealed, video_sealed) = (&files[0].1, &files[1].1);
    for &at in &keyframe_offsets {
        for pos in [at, sealed_offset(video_sealed, at)] {
            assert_ne!(
                video_sealed.get(pos..pos + 3),
                Some(&[0x9d, 0x01, 0x2a][..])
            );
        }
    }
    for &(at, packet) in &opus_offsets {
        for pos in [at, sealed_offset(audio_sealed, at)] {
            assert_ne!(audio_sealed.get(pos..pos + 8), Some(packet));
        }
    }

    // The plaintext chain names sessions, times and hashes only.
    let chain = std::fs::read(fixture.archive_dir.join("chain.jsonl")).unwrap();
    for needle in names {
        assert!(
            !contains(&chain, needle.as_bytes()),
            "the chain holds {needle:?}"
        );
    }
    // No temporary file was left behind.
    assert!(files.iter().all(|(name, _)| !name.starts_with('.')));
}

#[test]
fn archive_opens_only_with_the_organizations_key() {
    let fixture = Fixture::new();
    let media = Media::new(1);
    let summary = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let store = LocalStore::open(&fixture.archive_dir).unwrap();

    let stranger = OrgIdentity::generate();
    let err = export(
        &store,
        &stranger,
        Some(&fixture.verifying_key()),
        &summary.session_id,
        &fixture.dir.path().join("stranger"),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::Seal(_)), "{err}");
    assert!(
        !fixture
            .dir
            .path()
            .join("stranger")
            .join("manifest.json")
            .exists()
    );

    // The organization's key, through the CLI from its key file.
    let key_file = fixture.dir.path().join("org.key");
    let out = crate::common::recorder()
        .args(["org-keygen", "--out"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    // That is a new key: the archive was made for the fixture's, so it cannot open it either.
    let out = crate::common::recorder()
        .args(["export", "--identity"])
        .arg(&key_file)
        .arg("--archive-dir")
        .arg(&fixture.archive_dir)
        .arg(&summary.session_id)
        .arg(fixture.dir.path().join("new-key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The right key opens it.
    std::fs::write(&key_file, fixture.org.to_file_text()).unwrap();
    let out = crate::common::recorder()
        .args(["export", "--identity"])
        .arg(&key_file)
        .arg("--archive-dir")
        .arg(&fixture.archive_dir)
        .arg("--state-dir")
        .arg(&fixture.state_dir)
        .arg(&summary.session_id)
        .arg(fixture.dir.path().join("right-key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest =
        std::fs::read_to_string(fixture.dir.path().join("right-key/manifest.json")).unwrap();
    assert!(manifest.contains(ROOM));
}
