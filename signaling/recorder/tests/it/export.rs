//! A session exported with the organization's key plays: ffprobe finds the streams with every
//! packet, ffmpeg decodes every frame, and the tone comes out at 440 Hz.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use recorder::archive::export::export;
use recorder::archive::store::LocalStore;
use recorder::archive::track_part::PartLimits;

use crate::common::{Fixture, Media, ROOM};

fn ffprobe_stream(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs (scripts/install-deps installs ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn decodes_cleanly(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "decoding {} reported: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The frequency (1 Hz steps, 100–2000 Hz) with the most energy in `samples` (48 kHz).
fn dominant_frequency(samples: &[f64]) -> f64 {
    let power = |f: f64| {
        // Goertzel.
        let w = 2.0 * std::f64::consts::PI * f / 48_000.0;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in samples {
            let s = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    };
    (100..=2000)
        .map(f64::from)
        .max_by(|a, b| power(*a).total_cmp(&power(*b)))
        .unwrap()
}

#[test]
fn export_plays_with_ffprobe_and_the_tone_survives() {
    let fixture = Fixture::new();
    let media = Media::new(2);
    let summary = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    assert_eq!(summary.frames, (media.opus.len() + media.vp8.len()) as u64);

    let out_dir = fixture.dir.path().join("export");
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let exported = export(
        &store,
        &fixture.org,
        Some(&fixture.verifying_key()),
        &summary.session_id,
        &out_dir,
    )
    .unwrap();
    assert!(exported.signatures_checked);
    assert_eq!(exported.manifest.room, ROOM);
    assert_eq!(exported.manifest.participants.len(), 2);
    assert_eq!(exported.manifest.security_codes.len(), 2);
    assert!(exported.manifest.participants[1].left_at.is_some());
    let names: Vec<String> = exported
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "t01-audio-p001.webm",
            "t02-video-p001.webm",
            "manifest.json"
        ]
    );

    // Audio: one Opus stream with every packet, 2 s long.
    let audio = &exported.files[0];
    let probe = ffprobe_stream(audio);
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["codec_name"], "opus");
    assert_eq!(
        streams[0]["nb_read_packets"].as_str().unwrap(),
        media.opus.len().to_string()
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 2.0).abs() < 0.1, "audio lasts {duration} s");

    // Video: one VP8 stream with every frame, 320x240, 2 s long.
    let video = &exported.files[1];
    let probe = ffprobe_stream(video);
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["codec_name"], "vp8");
    assert_eq!(streams[0]["width"], 320);
    assert_eq!(streams[0]["height"], 240);
    assert_eq!(
        streams[0]["nb_read_packets"].as_str().unwrap(),
        media.vp8.len().to_string()
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - 2.0).abs() < 0.1, "video lasts {duration} s");

    decodes_cleanly(audio);
    decodes_cleanly(video);

    // The tone: decode to 48 kHz mono PCM and find its frequency.
    let pcm = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(audio)
        .args(["-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .unwrap();
    assert!(pcm.status.success());
    let samples: Vec<f64> = pcm
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect();
    assert!(samples.len() >= 90_000, "{} samples decoded", samples.len());
    // One second from the middle (away from the encoder's start-up).
    let frequency = dominant_frequency(&samples[24_000..72_000]);
    assert!(
        (frequency - 440.0).abs() <= 10.0,
        "the tone came out at {frequency} Hz"
    );

    // The manifest written is the one the chain vouches for, with the hashes of what was written.
    let manifest: recorder::archive::manifest::Manifest =
        serde_json::from_slice(&std::fs::read(&exported.files[2]).unwrap()).unwrap();
    assert_eq!(manifest, exported.manifest);
    let audio_record = &manifest.tracks[0].files[0];
    assert_eq!(
        audio_record.plaintext_sha256,
        recorder::archive::seal::sha256_hex(&std::fs::read(audio).unwrap())
    );
    assert_eq!(manifest.tracks[1].frames, media.vp8.len() as u64);
}

#[test]
fn long_tracks_are_cut_into_bounded_parts_that_each_play() {
    // Parts of at most 1 s (the production bound is 10 minutes or 64 MiB): 3 s of media make
    // three parts per track, the video ones cut at its keyframes (one a second).
    let fixture = Fixture::with_part_limits(PartLimits {
        max_bytes: 64 << 20,
        hard_max_bytes: 96 << 20,
        max_duration: Duration::from_secs(1),
    });
    let media = Media::new(3);
    let summary = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let out_dir = fixture.dir.path().join("export");
    let exported = export(
        &store,
        &fixture.org,
        Some(&fixture.verifying_key()),
        &summary.session_id,
        &out_dir,
    )
    .unwrap();
    let report = recorder::archive::verify::verify(&store, &fixture.verifying_key()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.files_checked, 7);

    for (track, total) in exported
        .manifest
        .tracks
        .iter()
        .zip([media.opus.len(), media.vp8.len()])
    {
        assert_eq!(track.files.len(), 3, "{}: {:?}", track.kind, track.files);
        assert_eq!(
            track.files.iter().map(|f| f.frames).sum::<u64>(),
            total as u64
        );
        for (n, file) in track.files.iter().enumerate() {
            assert_eq!(file.part, n as u32 + 1);
            assert_eq!(file.first_pts_ms, 1000 * n as u64, "{}", file.name);
            let path = out_dir.join(file.name.trim_end_matches(".age"));
            let probe = ffprobe_stream(&path);
            assert_eq!(
                probe["streams"][0]["nb_read_packets"].as_str().unwrap(),
                file.frames.to_string()
            );
            // Each part starts decodable: no errors decoding it alone.
            decodes_cleanly(&path);
        }
    }
}
