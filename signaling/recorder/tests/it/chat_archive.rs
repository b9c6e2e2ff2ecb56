//! The chat of a recorded session: archived encrypted like its media (no plaintext on disk),
//! chained, checked by `verify`, and exported as JSON lines naming who said what and when.

use std::time::{Duration, SystemTime};

use recorder::archive::chat_log::ChatLine;
use recorder::archive::export::export;
use recorder::archive::store::LocalStore;
use recorder::archive::verify::verify;
use recorder::sink::{
    ChatBody, ChatEntry, Participant, SessionArchive as _, SessionSink, SessionStart,
};

use crate::common::{ALICE, Fixture, ROOM};

const SECRET_LINE: &str = "the merger closes on friday — keep it quiet";

fn begin(fixture: &Fixture, started_at: SystemTime) -> Box<dyn SessionSink> {
    fixture
        .archive
        .begin(SessionStart {
            room: ROOM.to_owned(),
            started_at,
            retention: Duration::from_secs(3600),
            policy_json: "{}".to_owned(),
        })
        .unwrap()
}

#[test]
fn exported_chat_is_the_transcript_the_recorder_received() {
    let fixture = Fixture::new();
    let started_at = SystemTime::now();
    let mut sink = begin(&fixture, started_at);
    sink.participant_joined(Participant {
        device: "alice-laptop".to_owned(),
        identity: ALICE.to_owned(),
        role: "caller".to_owned(),
        identity_key: [1; 32],
        at: started_at,
    })
    .unwrap();
    let entry = |ms: u64, from: &str, body: ChatBody| ChatEntry {
        from: from.to_owned(),
        at: started_at + Duration::from_millis(ms),
        pts: Duration::from_millis(ms),
        body,
    };
    sink.chat(entry(
        1200,
        "alice-laptop",
        ChatBody::Text(SECRET_LINE.into()),
    ))
    .unwrap();
    sink.chat(entry(
        2500,
        "mallory-tablet",
        ChatBody::Unreadable("chat message does not authenticate".into()),
    ))
    .unwrap();
    sink.chat(entry(3100, "alice-laptop", ChatBody::Reaction("👍".into())))
        .unwrap();
    let summary = sink.finish(started_at + Duration::from_secs(4)).unwrap();

    // Nothing of the chat is readable on disk.
    let session_dir = fixture
        .archive_dir
        .join("sessions")
        .join(&summary.session_id);
    for file in std::fs::read_dir(&session_dir).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(SECRET_LINE.len())
                .any(|w| w == SECRET_LINE.as_bytes()),
            "plaintext chat on disk"
        );
    }
    assert!(session_dir.join("chat-p001.jsonl.age").exists());

    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let report = verify(&store, &fixture.verifying_key()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let out = fixture.dir.path().join("export");
    let exported = export(
        &store,
        &fixture.org,
        Some(&fixture.verifying_key()),
        &summary.session_id,
        &out,
    )
    .unwrap();
    assert_eq!(exported.manifest.chat.messages, 3);
    assert_eq!(exported.manifest.chat.unreadable, 1);
    assert_eq!(exported.manifest.chat.files.len(), 1);
    let transcript = std::fs::read_to_string(out.join("chat-p001.jsonl")).unwrap();
    let lines: Vec<ChatLine> = transcript
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].from, "alice-laptop");
    assert_eq!(lines[0].identity.as_deref(), Some(ALICE));
    assert_eq!(lines[0].text.as_deref(), Some(SECRET_LINE));
    assert_eq!(lines[0].pts_ms, 1200);
    assert_eq!(lines[1].identity, None, "not in the roster");
    assert_eq!(lines[1].text, None);
    assert_eq!(
        lines[1].unreadable.as_deref(),
        Some("chat message does not authenticate")
    );
    assert_eq!(lines[2].text, None);
    assert_eq!(lines[2].reaction.as_deref(), Some("👍"));
}

#[test]
fn altered_chat_part_fails_export() {
    let fixture = Fixture::new();
    let started_at = SystemTime::now();
    let mut sink = begin(&fixture, started_at);
    sink.chat(ChatEntry {
        from: "alice-laptop".to_owned(),
        at: started_at,
        pts: Duration::ZERO,
        body: ChatBody::Text("hello".into()),
    })
    .unwrap();
    let summary = sink.finish(started_at + Duration::from_secs(1)).unwrap();
    let part = fixture
        .archive_dir
        .join("sessions")
        .join(&summary.session_id)
        .join("chat-p001.jsonl.age");
    let mut bytes = std::fs::read(&part).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&part, bytes).unwrap();
    let store = LocalStore::open(&fixture.archive_dir).unwrap();
    let err = export(
        &store,
        &fixture.org,
        Some(&fixture.verifying_key()),
        &summary.session_id,
        &fixture.dir.path().join("export"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("chat-p001.jsonl.age"),
        "the altered part is named: {err}"
    );
}
