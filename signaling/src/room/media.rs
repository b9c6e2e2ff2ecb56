//! What the media node and clients report about media: published tracks, active speakers,
//! quality figures, subscriptions and client stats, and node-initiated messages to one device.

use std::collections::BTreeMap;

use super::{ConnId, Output, Room};
use crate::media_node::MediaQuality;
use crate::policy::Role;
use crate::protocol::{
    ClientStats, MediaResetNotice, MediaResetReason, RecordingReady, ServerMessage, SlotMap,
    Speaker, Speakers, Subscription, TrackInfo, TrackPublished, TrackUnpublished,
};

impl Room {
    /// Stores a member's latest client stats.
    pub fn record_stats(&mut self, conn: ConnId, device: &str, stats: ClientStats) {
        if let Some(m) = self.members.get_mut(device).filter(|m| m.conn == conn) {
            m.client_stats = Some(stats);
        }
    }

    /// Stores a member's subscriptions.
    pub fn record_subscriptions(&mut self, conn: ConnId, device: &str, subs: Vec<Subscription>) {
        if let Some(m) = self.members.get_mut(device).filter(|m| m.conn == conn) {
            m.subscriptions = subs;
        }
    }

    /// A media node published a track.
    pub fn publish(&mut self, track: TrackInfo) -> Vec<Output> {
        if !self.members.contains_key(&track.publisher) {
            return Vec::new();
        }
        self.tracks.insert(track.id.clone(), track.clone());
        if self.test_hooks.lies() {
            return self.tell_tracks(std::slice::from_ref(&track), None);
        }
        let to = self.all_conns();
        vec![Output::Send {
            to,
            message: ServerMessage::TrackPublished(TrackPublished { track }),
        }]
    }

    /// Test hooks only (see [`crate::test_hooks`]): `track_published` for each of `tracks` to
    /// every member but `except`, each told as the hooks tell it to that member. A join calls
    /// this too, so a lie can name the newcomer.
    pub(super) fn tell_tracks(&self, tracks: &[TrackInfo], except: Option<&str>) -> Vec<Output> {
        let members = self.members.keys().map(String::as_str);
        let mut out = Vec::new();
        for m in self.members.values() {
            if Some(m.entry.device.as_str()) == except {
                continue;
            }
            for track in tracks {
                let told = self
                    .test_hooks
                    .track_as_told(track, &m.entry.device, members.clone());
                out.push(Output::Send {
                    to: vec![m.conn],
                    message: ServerMessage::TrackPublished(TrackPublished { track: told }),
                });
            }
        }
        out
    }

    /// A track went away.
    pub fn unpublish(&mut self, track: &str) -> Vec<Output> {
        if self.tracks.remove(track).is_none() {
            return Vec::new();
        }
        let to = self.all_conns();
        vec![Output::Send {
            to,
            message: ServerMessage::TrackUnpublished(TrackUnpublished {
                track: track.into(),
            }),
        }]
    }

    /// The active speakers changed.
    pub fn speakers(&self, speakers: Vec<Speaker>) -> Vec<Output> {
        let speakers: Vec<Speaker> = speakers
            .into_iter()
            .filter(|s| self.members.contains_key(&s.device))
            .collect();
        vec![Output::Send {
            to: self.all_conns(),
            message: ServerMessage::Speakers(Speakers { speakers }),
        }]
    }

    /// Stores a quality report from the media node: the figures it carries replace the
    /// member's earlier ones, the others stay.
    pub fn record_quality(&mut self, device: &str, quality: MediaQuality) {
        if let Some(m) = self.members.get_mut(device) {
            let q = m.media_quality.get_or_insert_with(MediaQuality::default);
            q.rtt_seconds = quality.rtt_seconds.or(q.rtt_seconds);
            q.publish_loss_ratio = quality.publish_loss_ratio.or(q.publish_loss_ratio);
            q.subscribe_loss_ratio = quality.subscribe_loss_ratio.or(q.subscribe_loss_ratio);
            q.jitter_seconds = quality.jitter_seconds.or(q.jitter_seconds);
            q.available_bitrate_bps = quality.available_bitrate_bps.or(q.available_bitrate_bps);
        }
    }

    /// The media node lost every media session of the room: forgets the published tracks,
    /// subscriptions and quality figures, and tells every member to start a fresh session.
    pub fn media_reset(&mut self, reason: MediaResetReason) -> Vec<Output> {
        self.tracks.clear();
        for m in self.members.values_mut() {
            m.subscriptions.clear();
            m.media_quality = None;
        }
        vec![Output::Send {
            to: self.all_conns(),
            message: ServerMessage::MediaReset(MediaResetNotice { reason }),
        }]
    }

    /// Only `devices`' media sessions are gone (an edge node of a room spread over several was
    /// lost; the room and everyone else's sessions stay): each of them gets a new media
    /// session id (so a late call about the old one cannot touch the new one), loses its
    /// subscriptions, quality figures and pending node offer, and is told to start fresh.
    pub fn media_reset_devices(
        &mut self,
        devices: &[String],
        reason: MediaResetReason,
    ) -> Vec<Output> {
        let mut to = Vec::new();
        for device in devices {
            if let Some(m) = self.members.get_mut(device) {
                m.subscriptions.clear();
                m.media_quality = None;
                m.node_offer = None;
                m.media_session = crate::media_node::MediaSessionId::random();
                to.push(m.conn);
            }
        }
        if to.is_empty() {
            return Vec::new();
        }
        vec![Output::Send {
            to,
            message: ServerMessage::MediaReset(MediaResetNotice { reason }),
        }]
    }

    /// The media node made `subscriber`'s subscriptions to `tracks` live (it applied the
    /// subscriber's answer). Strict recording: when the subscriber is a recorder, the publisher
    /// of each of these tracks is told, in one `recording_ready` naming its tracks, that it may
    /// send media on them. Any other subscriber changes nothing.
    pub fn subscriptions_live(&self, subscriber: &str, tracks: &[String]) -> Vec<Output> {
        if self
            .members
            .get(subscriber)
            .is_none_or(|m| m.entry.role != Role::Recorder)
        {
            return Vec::new();
        }
        let mut by_publisher: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for track in tracks.iter().filter_map(|id| self.tracks.get(id)) {
            by_publisher
                .entry(track.publisher.as_str())
                .or_default()
                .push(track.id.clone());
        }
        by_publisher
            .into_iter()
            .filter_map(|(publisher, tracks)| {
                let m = self.members.get(publisher)?;
                Some(Output::Send {
                    to: vec![m.conn],
                    message: ServerMessage::RecordingReady(RecordingReady { tracks }),
                })
            })
            .collect()
    }

    /// Forwards a node-initiated message (offer, or an error) to one device.
    pub fn to_device(&self, device: &str, message: ServerMessage) -> Vec<Output> {
        match self.members.get(device) {
            Some(m) => vec![Output::Send {
                to: vec![m.conn],
                message,
            }],
            None => Vec::new(),
        }
    }

    /// The media node's `slots` map for `device`, as the test hooks tell it (the truth unless
    /// `signaling dev --test-hooks lie-slot-source`).
    pub fn slots_to_device(&self, device: &str, map: SlotMap) -> Vec<Output> {
        let members = self.members.keys().map(String::as_str);
        let told = self.test_hooks.slots_as_told(map, device, members);
        self.to_device(device, ServerMessage::Slots(told))
    }
}
