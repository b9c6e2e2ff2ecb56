//! Retention: an expired session is deleted with a signed tombstone; a held one survives until
//! released.

use std::time::{Duration, SystemTime};

use recorder::archive::chain::{self, Body};
use recorder::archive::retention;
use recorder::archive::store::LocalStore;
use recorder::archive::verify::verify;

use crate::common::{Fixture, Media, recorder};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn expired_session_is_swept_with_a_signed_tombstone() {
    let fixture = Fixture::new();
    let media = Media::new(1);
    // Started two hours ago, kept one hour: expired. And one kept a day: not.
    let expired = fixture.record(&media, 2 * HOUR, HOUR);
    let kept = fixture.record(&media, 2 * HOUR, 24 * HOUR);

    let swept = fixture.archive.sweep(SystemTime::now()).unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].session, expired.session_id);
    assert_eq!(swept[0].files_deleted, 3);
    assert!(!fixture.session_dir(&expired.session_id).exists());
    assert!(fixture.session_dir(&kept.session_id).exists());

    // The tombstone is on the chain, signed by the recorder, and the archive verifies.
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let read = chain::read(&store, &fixture.verifying_key()).unwrap();
    assert!(read.all_problems().next().is_none());
    let (last, _) = read.entries.last().unwrap();
    assert_eq!(
        last.body,
        Body::Tombstone {
            session: expired.session_id.clone(),
            reason: format!(
                "retention: expired at {}",
                match &read.entries[0].0.body {
                    Body::Open { expires_at, .. } => expires_at.clone(),
                    other => panic!("first entry {other:?}"),
                }
            ),
        }
    );
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // A second sweep has nothing to do; the CLI lists the session as deleted.
    assert!(fixture.archive.sweep(SystemTime::now()).unwrap().is_empty());
    let out = recorder()
        .args(["list", "--archive-dir"])
        .arg(&fixture.archive_dir)
        .output()
        .unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with(&expired.session_id))
        .unwrap();
    assert!(line.ends_with("deleted"), "{line}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&kept.session_id))
        .unwrap();
    assert!(line.ends_with("finished"), "{line}");

    // Deleting the tombstone line (hiding the deletion) breaks the chain.
    let chain_path = fixture.archive_dir.join("chain.jsonl");
    let text = std::fs::read_to_string(&chain_path).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("\"tombstone\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&chain_path, without).unwrap();
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("is missing")),
        "{:?}",
        report.problems
    );
}

#[test]
fn held_session_survives_the_sweeper() {
    let fixture = Fixture::new();
    let media = Media::new(1);
    let session = fixture.record(&media, 2 * HOUR, HOUR);

    // Held through the CLI, as an operator would.
    let out = recorder()
        .args(["hold", &session.session_id, "--reason", "case 2026-117"])
        .arg("--state-dir")
        .arg(&fixture.state_dir)
        .arg("--archive-dir")
        .arg(&fixture.archive_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(fixture.archive.sweep(SystemTime::now()).unwrap().is_empty());
    assert!(fixture.session_dir(&session.session_id).exists());
    // Long after expiry too.
    let later = SystemTime::now() + 365 * 24 * HOUR;
    assert!(fixture.archive.sweep(later).unwrap().is_empty());
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    assert!(verify(&store, &fixture.verifying_key()).unwrap().ok());

    // A second hold is refused; releasing makes it sweepable.
    let signer = fixture.archive.signer();
    let err = retention::hold(
        &store,
        signer,
        &session.session_id,
        "again",
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already held"), "{err}");
    retention::release(&store, signer, &session.session_id, SystemTime::now()).unwrap();
    let swept = fixture.archive.sweep(SystemTime::now()).unwrap();
    assert_eq!(swept.len(), 1);
    assert!(!fixture.session_dir(&session.session_id).exists());
    let read = chain::read(&store, &fixture.verifying_key()).unwrap();
    let kinds: Vec<&str> = read
        .entries
        .iter()
        .map(|(e, _)| match e.body {
            Body::Open { .. } => "open",
            Body::Session { .. } => "session",
            Body::Tombstone { .. } => "tombstone",
            Body::Hold { .. } => "hold",
            Body::Release { .. } => "release",
        })
        .collect();
    assert_eq!(kinds, ["open", "session", "hold", "release", "tombstone"]);
}
