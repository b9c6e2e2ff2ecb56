//! Unit tests of the room rules, driven on virtual time.

use std::time::{Duration, Instant};

use super::*;
use crate::auth::Grants;
use crate::policy::RoomKind;
use crate::policy::RoomPolicyRequest;
use crate::protocol::{
    DeviceBundle, ErrorCode, KeyAck, KeyEnvelope, MembershipAction, TrackKind, TrackSource,
};

const T: RekeyTiming = RekeyTiming {
    debounce: Duration::from_millis(100),
    max_delay: Duration::from_millis(400),
    broadcast_viewer_interval: Duration::from_secs(30),
    join_window: Duration::from_millis(100),
    join_batch_max: 4,
    resume_grace: Duration::ZERO,
};

pub(super) fn room(kind: RoomKind) -> Room {
    let req = RoomPolicyRequest {
        kind,
        max_callers: None,
        max_presenters: None,
        max_viewers: None,
        e2ee: None,
        recording: None,
        receive_slots: None,
        last_n: None,
    };
    Room::new(
        "r".into(),
        "c-1".into(),
        req.into_policy("r").unwrap(),
        T,
        0,
    )
}

pub(super) fn join_req(conn: ConnId, device: &str, role: Role) -> JoinRequest {
    JoinRequest {
        conn,
        grants: Grants {
            room: "r".into(),
            identity: format!("id-{device}"),
            role,
            can_publish: role.may_publish(),
            can_subscribe: true,
            moderator: false,
        },
        bundle: DeviceBundle {
            v: 1,
            device: device.into(),
            identity_key: [1u8; 32],
            hpke_key: [2u8; 32],
            sig: [3u8; 64],
        },
        name: None,
        now_unix: 0,
        resume: None,
    }
}

pub(super) fn membership(out: &[Output]) -> Vec<(Vec<ConnId>, MembershipAction, Vec<String>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Membership(n),
            } => {
                let devices = if n.action == MembershipAction::Ratchet {
                    &n.joined
                } else {
                    &n.left
                };
                Some((to.clone(), n.action, devices.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn join_notifies_and_assigns_distinct_slots() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    let (a, out) = r.join(join_req(1, "a", Role::Caller), now, false).unwrap();
    assert!(out.is_empty());
    assert_eq!(a.roster.devices.len(), 1);
    let (b, out) = r.join(join_req(2, "b", Role::Caller), now, false).unwrap();
    assert_ne!(a.slot, b.slot);
    assert_eq!(b.roster.devices.len(), 2);
    assert!(b.roster.version > a.roster.version);
    assert!(membership(&out).is_empty());
    assert_eq!(
        membership(&r.handle_timeout(now + T.join_window)),
        vec![(vec![1], MembershipAction::Ratchet, vec!["b".into()])]
    );
}

#[test]
fn leaves_are_debounced_into_one_rekey() {
    let t0 = Instant::now();
    let mut r = room(RoomKind::Meeting);
    for (i, d) in ["a", "b", "c", "d"].iter().enumerate() {
        r.join(join_req(i as u64, d, Role::Caller), t0, false)
            .unwrap();
    }
    let out = r.leave(2, "c", Departure::Dropped, t0);
    assert!(membership(&out).is_empty(), "no rekey before the debounce");
    let t1 = t0 + Duration::from_millis(50);
    r.leave(3, "d", Departure::Left, t1);
    assert_eq!(r.poll_timeout(), Some(t1 + T.debounce));
    assert!(r.handle_timeout(t1 + Duration::from_millis(99)).is_empty());
    let out = r.handle_timeout(t1 + T.debounce);
    assert_eq!(
        membership(&out),
        vec![(
            vec![0, 1],
            MembershipAction::Rekey,
            vec!["c".into(), "d".into()]
        )]
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_drained_session_leaves_without_telling_the_others() {
    let t0 = Instant::now();
    let mut r = room(RoomKind::Meeting);
    r.join(join_req(1, "a", Role::Caller), t0, false).unwrap();
    r.join(join_req(2, "b", Role::Caller), t0, false).unwrap();
    r.handle_timeout(t0 + T.join_window);
    r.publish(TrackInfo {
        id: "TR_b_0".into(),
        publisher: "b".into(),
        kind: TrackKind::Video,
        source: TrackSource::Camera,
        layers: vec![],
    });
    let out = r.leave(2, "b", Departure::ServerShutdown, t0 + T.join_window);
    assert!(
        matches!(out.as_slice(), [Output::MediaRemove { device, .. }] if device == "b"),
        "only the media node hears it: {out:?}"
    );
    assert_eq!(r.poll_timeout(), None, "no rekey is scheduled");
    assert!(!r.tracks.contains_key("TR_b_0"), "its track is gone");
    assert!(!r.members.contains_key("b"));
}

#[test]
fn continuous_leaves_rekey_by_max_delay() {
    let t0 = Instant::now();
    let mut r = room(RoomKind::Meeting);
    for i in 0..20u64 {
        r.join(join_req(i, &format!("d{i}"), Role::Caller), t0, false)
            .unwrap();
    }
    for i in 1..10u64 {
        r.leave(
            i,
            &format!("d{i}"),
            Departure::Dropped,
            t0 + Duration::from_millis(60 * i),
        );
    }
    assert_eq!(
        r.poll_timeout(),
        Some(t0 + Duration::from_millis(60) + T.max_delay)
    );
}

#[test]
fn broadcast_viewer_leaves_coalesce() {
    let t0 = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    r.join(join_req(0, "p", Role::Presenter), t0, false)
        .unwrap();
    for i in 1..=5u64 {
        r.join(join_req(i, &format!("v{i}"), Role::Viewer), t0, false)
            .unwrap();
    }
    r.handle_timeout(t0 + T.join_window);
    r.leave(1, "v1", Departure::Dropped, t0);
    let first = t0 + T.debounce;
    assert_eq!(membership(&r.handle_timeout(first)).len(), 1);
    // A second viewer leave soon after waits for the coalescing window.
    r.leave(2, "v2", Departure::Dropped, first + Duration::from_secs(1));
    assert_eq!(r.poll_timeout(), Some(first + T.broadcast_viewer_interval));
    assert!(r.handle_timeout(first + Duration::from_secs(29)).is_empty());
    let out = r.handle_timeout(first + T.broadcast_viewer_interval);
    assert_eq!(
        membership(&out),
        vec![(vec![0], MembershipAction::Rekey, vec!["v2".into()])]
    );
}

#[test]
fn viewers_see_publishers_only() {
    let now = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    r.join(join_req(0, "p", Role::Presenter), now, false)
        .unwrap();
    let (v1, out) = r.join(join_req(1, "v1", Role::Viewer), now, false).unwrap();
    assert_eq!(v1.roster.devices.len(), 2);
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::Send { to, .. } if to == &vec![0]))
    );
    let (v2, _) = r.join(join_req(2, "v2", Role::Viewer), now, false).unwrap();
    let names: Vec<_> = v2
        .roster
        .devices
        .iter()
        .map(|e| e.device.as_str())
        .collect();
    assert_eq!(names, vec!["p", "v2"]);
    let ack = KeyAck {
        to: "v1".into(),
        generation: 0,
        step: 0,
    };
    assert_eq!(
        r.route_ack(2, "v2", ack).unwrap_err(),
        RouteError::NotInRoster("v1".into())
    );
}

#[test]
fn capacity_and_roles() {
    let now = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    assert!(matches!(
        r.join(join_req(0, "c", Role::Caller), now, false),
        Err(JoinError::RoleNotAllowed(_))
    ));
    assert!(matches!(
        r.join(join_req(0, "rec", Role::Recorder), now, false),
        Err(JoinError::RoleNotAllowed(_))
    ));
    for i in 0..500u64 {
        r.join(join_req(i, &format!("v{i}"), Role::Viewer), now, false)
            .unwrap();
    }
    assert_eq!(
        r.join(join_req(999, "v-extra", Role::Viewer), now, false)
            .unwrap_err(),
        JoinError::Full {
            role: "viewer",
            capacity: 500
        }
    );
    // The same device and identity may rejoin (replacing its old connection).
    let (_, out) = r
        .join(join_req(1000, "v7", Role::Viewer), now, false)
        .unwrap();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Close {
            conn: 7,
            reason: LeaveReason::Replaced
        }
    )));
    // The old connection's late leave does not remove the new one.
    r.leave(7, "v7", Departure::Dropped, now);
    assert_eq!(r.member("v7").map(|m| m.conn), Some(1000));
}

/// Devices that may publish take the KID's sender slots (0–4095); viewers, who never send,
/// take receive-only slots (4096–65535): a broadcast admits more viewers than there are KID
/// slots, and its presenters still get sender slots after them.
#[test]
fn viewers_take_receive_only_slots_beyond_the_kid_range() {
    let now = Instant::now();
    let req = RoomPolicyRequest {
        kind: RoomKind::Broadcast,
        max_callers: None,
        max_presenters: None,
        max_viewers: Some(5_000),
        e2ee: None,
        recording: None,
        receive_slots: None,
        last_n: None,
    };
    let mut r = Room::new(
        "r".into(),
        "c-1".into(),
        req.into_policy("r").unwrap(),
        T,
        0,
    );
    let mut slots = std::collections::HashSet::new();
    for i in 0..5_000u64 {
        let (joined, _) = r
            .join(join_req(i, &format!("v{i}"), Role::Viewer), now, false)
            .unwrap();
        assert!(joined.slot >= 4096, "viewer slot {}", joined.slot);
        assert!(
            slots.insert(joined.slot),
            "slot {} given twice",
            joined.slot
        );
    }
    let (presenter, _) = r
        .join(join_req(9_000, "p", Role::Presenter), now, false)
        .unwrap();
    assert!(presenter.slot < 4096, "presenter slot {}", presenter.slot);
    assert_eq!(
        r.join(join_req(9_001, "v-extra", Role::Viewer), now, false)
            .unwrap_err(),
        JoinError::Full {
            role: "viewer",
            capacity: 5_000
        }
    );
}

/// A join that asks back a slot (`join.resume`) gets it only from its own space: a viewer
/// never takes a sender slot that way, nor a presenter a receive-only one.
#[test]
fn a_slot_asked_back_must_be_of_the_devices_space() {
    let now = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    let resume = |slot| crate::protocol::ResumeCall {
        call: "c-1".into(),
        slot,
        media_lost: false,
    };
    let mut viewer = join_req(1, "v", Role::Viewer);
    viewer.resume = Some(resume(7));
    let (joined, _) = r.join(viewer, now, false).unwrap();
    assert!(joined.slot >= 4096, "viewer given {}", joined.slot);
    let mut presenter = join_req(2, "p", Role::Presenter);
    presenter.resume = Some(resume(5000));
    let (joined, _) = r.join(presenter, now, false).unwrap();
    assert!(joined.slot < 4096, "presenter given {}", joined.slot);
    let mut back = join_req(3, "v2", Role::Viewer);
    back.resume = Some(resume(4100));
    let (joined, _) = r.join(back, now, false).unwrap();
    assert_eq!(
        joined.slot, 4100,
        "a free slot of its own space is given back"
    );
}

#[test]
fn envelope_rules() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    let (a, _) = r.join(join_req(1, "a", Role::Caller), now, false).unwrap();
    r.join(join_req(2, "b", Role::Caller), now, false).unwrap();
    let env = KeyEnvelope {
        v: 1,
        room: "r".into(),
        call: "c-1".into(),
        sender: "a".into(),
        recipient: "b".into(),
        slot: a.slot,
        generation: 0,
        step: 0,
        suite: 5,
        enc: [0u8; 32],
        ct: vec![0u8; 48],
        sig: [0u8; 64],
    };
    assert!(
        matches!(r.route_envelope(1, "a", env.clone()), Ok(Output::Send { to, .. }) if to == vec![2])
    );
    assert_eq!(
        r.route_envelope(9, "a", env.clone()).unwrap_err(),
        RouteError::NotJoined
    );
    let mut spoof = env.clone();
    spoof.sender = "b".into();
    assert_eq!(
        r.route_envelope(1, "a", spoof).unwrap_err().code(),
        ErrorCode::Forbidden
    );
    let mut stranger = env.clone();
    stranger.recipient = "zz".into();
    assert_eq!(
        r.route_envelope(1, "a", stranger).unwrap_err().code(),
        ErrorCode::NotInRoster
    );
    let mut other_room = env.clone();
    other_room.room = "x".into();
    assert_eq!(
        r.route_envelope(1, "a", other_room).unwrap_err().code(),
        ErrorCode::BadEnvelope
    );
    let mut other_call = env;
    other_call.call = "c-2".into();
    assert_eq!(
        r.route_envelope(1, "a", other_call).unwrap_err().code(),
        ErrorCode::BadEnvelope
    );
}

/// `track_published` recipients and the publisher each is told.
fn told_publishers(out: &[Output]) -> Vec<(ConnId, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::TrackPublished(p),
            } => Some(
                to.iter()
                    .map(|c| (*c, p.track.publisher.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn lie_track_source_names_a_third_member_and_retells_on_join() {
    use crate::test_hooks::{TestHook, TestHooks};
    let now = Instant::now();
    let mut r =
        room(RoomKind::Meeting).with_test_hooks(TestHooks::enabled(&[TestHook::LieTrackSource]));
    r.join(join_req(1, "a", Role::Caller), now, false).unwrap();
    r.join(join_req(2, "b", Role::Caller), now, false).unwrap();
    let track = TrackInfo {
        id: "TR_a_0".into(),
        publisher: "a".into(),
        kind: TrackKind::Video,
        source: TrackSource::Camera,
        layers: vec![],
    };
    // Two members: no third name yet, the truth.
    assert_eq!(
        told_publishers(&r.publish(track)),
        vec![(1, "a".to_string()), (2, "a".to_string())]
    );
    // A third joins: it is told `b`, and `b` is told again, now `c`; the publisher hears the truth.
    let (joined, out) = r.join(join_req(3, "c", Role::Caller), now, false).unwrap();
    assert_eq!(joined.tracks[0].publisher, "b");
    let mut retold = told_publishers(&out);
    retold.sort();
    assert_eq!(retold, vec![(1, "a".to_string()), (2, "c".to_string())]);
}

#[test]
fn without_test_hooks_every_member_hears_the_true_publisher() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    for (i, d) in ["a", "b", "c"].iter().enumerate() {
        r.join(join_req(i as u64 + 1, d, Role::Caller), now, false)
            .unwrap();
    }
    let out = r.publish(TrackInfo {
        id: "TR_a_0".into(),
        publisher: "a".into(),
        kind: TrackKind::Video,
        source: TrackSource::Camera,
        layers: vec![],
    });
    let told = told_publishers(&out);
    assert_eq!(told.len(), 3);
    assert!(told.iter().all(|(_, p)| p == "a"), "{told:?}");
}
