//! `verify` finds what was done to an archive: an altered file, a deleted session (files only,
//! or with its chain entries), a chain signed by another key.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use recorder::archive::store::LocalStore;
use recorder::archive::verify::verify;

use crate::common::{Fixture, Media, recorder};

fn verify_cli(fixture: &Fixture) -> (bool, String) {
    let out = recorder()
        .args(["verify", "--archive-dir"])
        .arg(&fixture.archive_dir)
        .args([
            "--recorder-key",
            &URL_SAFE_NO_PAD.encode(fixture.recorder_key),
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn altered_session_fails_verify() {
    let fixture = Fixture::new();
    let media = Media::new(1);
    let first = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let second = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let (ok, out) = verify_cli(&fixture);
    assert!(ok, "a fresh archive verifies: {out}");
    assert!(out.contains("6 files checked, 0 problems"), "{out}");

    // One bit of one file of the first session.
    let file = fixture
        .session_dir(&first.session_id)
        .join("t02-video-p001.webm.age");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, bytes).unwrap();

    let (ok, out) = verify_cli(&fixture);
    assert!(!ok, "verify exits non-zero");
    assert!(
        out.contains(&format!(
            "PROBLEM: session {}: t02-video-p001.webm.age does not match its chained hash (altered)",
            first.session_id
        )),
        "{out}"
    );
    assert!(
        !out.contains(&second.session_id),
        "the other session is fine: {out}"
    );
    assert!(out.contains("1 problems"), "{out}");

    // A file slipped into a finished session is named too.
    std::fs::write(
        fixture
            .session_dir(&second.session_id)
            .join("t03-audio-p001.webm.age"),
        b"forged",
    )
    .unwrap();
    let report = verify(
        &LocalStore::open(&fixture.archive_dir).unwrap(),
        &fixture.verifying_key(),
    )
    .unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("t03-audio-p001.webm.age is not on the chain")),
        "{:?}",
        report.problems
    );
}

#[test]
fn deleted_session_fails_verify() {
    let fixture = Fixture::new();
    let media = Media::new(1);
    let first = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let second = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let third = fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let store = LocalStore::open(&fixture.archive_dir).unwrap();

    // The files of a session deleted by hand (not by the sweep): each is named missing.
    std::fs::remove_dir_all(fixture.session_dir(&first.session_id)).unwrap();
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(!report.ok());
    assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
    for name in [
        "t01-audio-p001.webm.age",
        "t02-video-p001.webm.age",
        "manifest.json.age",
    ] {
        assert!(
            report.problems.contains(&format!(
                "session {}: {name} is missing (deleted without a tombstone)",
                first.session_id
            )),
            "{:?}",
            report.problems
        );
    }
    let (ok, out) = verify_cli(&fixture);
    assert!(!ok);
    assert!(out.contains("is missing"), "{out}");

    // And the second session removed with its chain entries: the chain's links break where
    // they were (the third session's entries follow them).
    std::fs::remove_dir_all(fixture.session_dir(&second.session_id)).unwrap();
    let chain_path = fixture.archive_dir.join("chain.jsonl");
    let chain = std::fs::read_to_string(&chain_path).unwrap();
    let kept: String = chain
        .lines()
        .filter(|line| !line.contains(&second.session_id))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(kept.lines().count(), chain.lines().count() - 2);
    std::fs::write(&chain_path, kept).unwrap();
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("does not link to the line before it")),
        "{:?}",
        report.problems
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.contains(&third.session_id))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("sequence number")),
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_refuses_a_chain_signed_by_another_key() {
    let fixture = Fixture::new();
    let other = Fixture::new();
    let media = Media::new(1);
    fixture.record(&media, Duration::ZERO, Duration::from_secs(3600));
    other.record(&media, Duration::ZERO, Duration::from_secs(3600));
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    assert!(verify(&store, &fixture.verifying_key()).unwrap().ok());

    // The chain verified with another recorder's key: every line is refused.
    let report = verify(&store, &other.verifying_key()).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.contains("signature does not verify"))
    );

    // A chain forged with another key (well-formed, linked, signed) in place of the real one.
    std::fs::copy(
        other.archive_dir.join("chain.jsonl"),
        fixture.archive_dir.join("chain.jsonl"),
    )
    .unwrap();
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .filter(|p| p.contains("signature does not verify with the recorder key"))
            .count()
            == 2,
        "{:?}",
        report.problems
    );
    let (ok, out) = verify_cli(&fixture);
    assert!(!ok);
    assert!(out.contains("signature does not verify"), "{out}");

    // And the recorder refuses to append to it.
    let err = fixture
        .archive
        .sweep(std::time::SystemTime::now())
        .unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}
