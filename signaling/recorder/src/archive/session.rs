//! [`LocalArchive`]: the [`SessionArchive`] the live side writes into. Each session is a folder
//! `sessions/<id>/` of the store holding one encrypted WebM file per track part and the
//! encrypted manifest; the chain gets an `open` entry when it starts and a `session` entry with
//! every file's ciphertext hash when it finishes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::chain::{Body, ChainFile, ChainSigner};
use super::chat_log::{ChatLog, ClosedChatPart};
use super::manifest::{
    ChatRecord, FileRecord, MANIFEST_BLOB, Manifest, ParticipantRecord, RecorderRecord,
    SecurityCodeRecord, TrackRecord,
};
use super::seal::{OrgRecipient, sha256_hex};
use super::store::Store;
use super::track_part::{ClosedPart, PartLimits, TrackWriter};
use super::{ArchiveError, timefmt};
use crate::sink::{
    ChatEntry, Codec, Frame, MediaKind, Participant, SessionArchive, SessionSink, SessionStart,
    SessionSummary, SinkError, TrackMeta,
};

/// The folder of a session in the store.
pub fn session_folder(session: &str) -> String {
    format!("sessions/{session}")
}

/// The archive over a store: begins sessions, encrypts to the organization, signs the chain.
pub struct LocalArchive {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    recipient: OrgRecipient,
    signer: ChainSigner,
    recorder_device: String,
    part_limits: PartLimits,
}

impl LocalArchive {
    /// An archive writing to `store`, encrypting to `recipient`, signing the chain with
    /// `signer` (the identity key of the recorder `recorder_device`), cutting each track into
    /// parts at `part_limits` (the memory bound; [`PartLimits::default`] in production).
    pub fn new(
        store: Arc<dyn Store>,
        recipient: OrgRecipient,
        signer: ChainSigner,
        recorder_device: String,
        part_limits: PartLimits,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                recipient,
                signer,
                recorder_device,
                part_limits,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.shared.store
    }

    /// The chain signer.
    pub fn signer(&self) -> &ChainSigner {
        &self.shared.signer
    }

    /// Deletes the sessions past their expiry and not held (see
    /// [`retention::sweep`](super::retention::sweep)).
    pub fn sweep(&self, now: SystemTime) -> Result<Vec<super::retention::Swept>, ArchiveError> {
        super::retention::sweep(self.store(), self.signer(), now)
    }
}

impl SessionArchive for LocalArchive {
    fn begin(&self, start: SessionStart) -> Result<Box<dyn SessionSink>, SinkError> {
        let id = timefmt::session_id(start.started_at);
        let expires_at = start.started_at + start.retention;
        self.shared
            .signer
            .append(
                &*self.shared.store,
                Body::Open {
                    session: id.clone(),
                    started_at: timefmt::format(start.started_at),
                    expires_at: timefmt::format(expires_at),
                },
                SystemTime::now(),
            )
            .map_err(sink_error)?;
        Ok(Box::new(LocalSession {
            shared: Arc::clone(&self.shared),
            id,
            start,
            expires_at,
            participants: Vec::new(),
            codes: Vec::new(),
            tracks: Vec::new(),
            track_index: HashMap::new(),
            chat: ChatLog::new(),
            chat_files: Vec::new(),
            files: Vec::new(),
            bytes_written: 0,
        }))
    }
}

fn sink_error(e: ArchiveError) -> SinkError {
    match e {
        ArchiveError::Io { source, .. } => SinkError::Io(source),
        other => SinkError::Refused(other.to_string()),
    }
}

struct TrackState {
    writer: TrackWriter,
    files: Vec<FileRecord>,
}

/// A session being recorded.
struct LocalSession {
    shared: Arc<Shared>,
    id: String,
    start: SessionStart,
    expires_at: SystemTime,
    participants: Vec<ParticipantRecord>,
    codes: Vec<SecurityCodeRecord>,
    tracks: Vec<TrackState>,
    track_index: HashMap<String, usize>,
    chat: ChatLog,
    chat_files: Vec<FileRecord>,
    files: Vec<ChainFile>,
    bytes_written: u64,
}

impl LocalSession {
    /// Encrypts a closed part, stores it atomically and records it.
    fn store_part(&mut self, index: usize, part: ClosedPart) -> Result<(), SinkError> {
        let track = &self.tracks[index];
        let kind = match track.writer.meta().kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let name = format!("t{:02}-{kind}-p{:03}.webm.age", index + 1, part.part);
        let record = self.store_blob(
            name,
            &part.webm,
            part.part,
            part.frames,
            (millis(part.first_pts), millis(part.last_pts)),
        )?;
        self.tracks[index].files.push(record);
        Ok(())
    }

    /// Encrypts a closed chat part, stores it atomically and records it.
    fn store_chat_part(&mut self, part: ClosedChatPart) -> Result<(), SinkError> {
        let name = format!("chat-p{:03}.jsonl.age", part.part);
        let record = self.store_blob(
            name,
            &part.jsonl,
            part.part,
            part.messages,
            (part.first_pts_ms, part.last_pts_ms),
        )?;
        self.chat_files.push(record);
        Ok(())
    }

    /// Seals `plaintext` to the organization, stores it as `name` and chains it; its manifest
    /// record.
    fn store_blob(
        &mut self,
        name: String,
        plaintext: &[u8],
        part: u32,
        frames: u64,
        (first_pts_ms, last_pts_ms): (u64, u64),
    ) -> Result<FileRecord, SinkError> {
        let sealed = self.shared.recipient.seal(plaintext);
        let ciphertext_sha256 = sha256_hex(&sealed);
        self.shared
            .store
            .put(&format!("{}/{name}", session_folder(&self.id)), &sealed)?;
        self.bytes_written += sealed.len() as u64;
        self.files.push(ChainFile {
            name: name.clone(),
            sha256: ciphertext_sha256.clone(),
            bytes: sealed.len() as u64,
        });
        Ok(FileRecord {
            name,
            part,
            frames,
            first_pts_ms,
            last_pts_ms,
            plaintext_sha256: sha256_hex(plaintext),
            plaintext_bytes: plaintext.len() as u64,
            ciphertext_sha256,
            ciphertext_bytes: sealed.len() as u64,
        })
    }

    fn manifest(&self, ended_at: SystemTime) -> Manifest {
        Manifest {
            v: 1,
            session: self.id.clone(),
            room: self.start.room.clone(),
            started_at: timefmt::format(self.start.started_at),
            ended_at: timefmt::format(ended_at),
            retention_secs: self.start.retention.as_secs(),
            expires_at: timefmt::format(self.expires_at),
            recorder: RecorderRecord {
                device: self.shared.recorder_device.clone(),
                identity_key: URL_SAFE_NO_PAD.encode(self.shared.signer.public_key()),
            },
            participants: self.participants.clone(),
            security_codes: self.codes.clone(),
            tracks: self
                .tracks
                .iter()
                .map(|t| {
                    let meta = t.writer.meta();
                    let (width, height) = match meta.kind {
                        MediaKind::Audio => (0, 0),
                        MediaKind::Video => t.writer.size(),
                    };
                    TrackRecord {
                        track_id: meta.track_id.clone(),
                        device: meta.device.clone(),
                        kind: match meta.kind {
                            MediaKind::Audio => "audio",
                            MediaKind::Video => "video",
                        }
                        .to_owned(),
                        codec: match meta.codec {
                            Codec::Opus => "opus",
                            Codec::Vp8 => "vp8",
                        }
                        .to_owned(),
                        source: meta.source.clone(),
                        width,
                        height,
                        frames: t.writer.frames(),
                        frames_before_keyframe: t.writer.frames_before_keyframe(),
                        files: t.files.clone(),
                    }
                })
                .collect(),
            chat: ChatRecord {
                messages: self.chat.messages(),
                unreadable: self.chat.unreadable(),
                files: self.chat_files.clone(),
            },
            policy_json: self.start.policy_json.clone(),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SessionSink for LocalSession {
    fn participant_joined(&mut self, participant: Participant) -> Result<(), SinkError> {
        self.participants.push(ParticipantRecord {
            device: participant.device,
            identity: participant.identity,
            role: participant.role,
            identity_key: URL_SAFE_NO_PAD.encode(participant.identity_key),
            joined_at: timefmt::format(participant.at),
            left_at: None,
        });
        Ok(())
    }

    fn participant_left(&mut self, device: &str, at: SystemTime) -> Result<(), SinkError> {
        let present = self
            .participants
            .iter_mut()
            .rev()
            .find(|p| p.device == device && p.left_at.is_none())
            .ok_or_else(|| {
                SinkError::Refused(format!("participant {device} left but was not present"))
            })?;
        present.left_at = Some(timefmt::format(at));
        Ok(())
    }

    fn security_code(&mut self, code: &str, at: SystemTime) -> Result<(), SinkError> {
        self.codes.push(SecurityCodeRecord {
            code: code.to_owned(),
            at: timefmt::format(at),
        });
        Ok(())
    }

    fn track(&mut self, track: TrackMeta) -> Result<(), SinkError> {
        let compatible = matches!(
            (track.kind, track.codec),
            (MediaKind::Audio, Codec::Opus) | (MediaKind::Video, Codec::Vp8)
        );
        if !compatible {
            return Err(SinkError::Refused(format!(
                "track {}: {:?} cannot be {:?}",
                track.track_id, track.kind, track.codec
            )));
        }
        if self.track_index.contains_key(&track.track_id) {
            return Err(SinkError::Refused(format!(
                "track {} announced twice",
                track.track_id
            )));
        }
        self.track_index
            .insert(track.track_id.clone(), self.tracks.len());
        self.tracks.push(TrackState {
            writer: TrackWriter::new(track, self.shared.part_limits),
            files: Vec::new(),
        });
        Ok(())
    }

    fn frame(&mut self, frame: Frame<'_>) -> Result<(), SinkError> {
        let index = *self.track_index.get(frame.track_id).ok_or_else(|| {
            SinkError::Refused(format!("frame of unannounced track {}", frame.track_id))
        })?;
        let closed = self.tracks[index].writer.push(&frame)?;
        if let Some(part) = closed {
            self.store_part(index, part)?;
        }
        Ok(())
    }

    fn chat(&mut self, entry: ChatEntry) -> Result<(), SinkError> {
        let identity = self
            .participants
            .iter()
            .rev()
            .find(|p| p.device == entry.from)
            .map(|p| p.identity.clone());
        match self.chat.push(entry, identity) {
            Some(part) => self.store_chat_part(part),
            None => Ok(()),
        }
    }

    fn finish(mut self: Box<Self>, at: SystemTime) -> Result<SessionSummary, SinkError> {
        for index in 0..self.tracks.len() {
            if let Some(part) = self.tracks[index].writer.close()? {
                self.store_part(index, part)?;
            }
        }
        if let Some(part) = self.chat.close() {
            self.store_chat_part(part)?;
        }
        let manifest =
            serde_json::to_vec_pretty(&self.manifest(at)).expect("a manifest serializes");
        let sealed = self.shared.recipient.seal(&manifest);
        self.shared.store.put(
            &format!("{}/{MANIFEST_BLOB}", session_folder(&self.id)),
            &sealed,
        )?;
        self.bytes_written += sealed.len() as u64;
        self.shared
            .signer
            .append(
                &*self.shared.store,
                Body::Session {
                    session: self.id.clone(),
                    started_at: timefmt::format(self.start.started_at),
                    ended_at: timefmt::format(at),
                    expires_at: timefmt::format(self.expires_at),
                    files: std::mem::take(&mut self.files),
                    manifest: ChainFile {
                        name: MANIFEST_BLOB.to_owned(),
                        sha256: sha256_hex(&sealed),
                        bytes: sealed.len() as u64,
                    },
                },
                at,
            )
            .map_err(sink_error)?;
        Ok(SessionSummary {
            session_id: self.id.clone(),
            frames: self.tracks.iter().map(|t| t.writer.frames()).sum(),
            bytes_written: self.bytes_written,
        })
    }
}
