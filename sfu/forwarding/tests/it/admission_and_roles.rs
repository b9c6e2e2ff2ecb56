//! Capacity and role refusals: default deny for publishing, hard caps of 100 callers per
//! meeting and 500 viewers per broadcast, unknown and stale ids.

use crate::common::*;
use sfu_forwarding::{
    Config, Error, MAX_BROADCAST_VIEWERS, MAX_MEETING_CALLERS, PacketError, Role, RoomKind,
    RoomPolicy,
};

#[test]
fn meeting_admits_100_callers_and_refuses_the_101st() {
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    for _ in 0..MAX_MEETING_CALLERS {
        sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
    }
    assert_eq!(
        sim.sfu.add_participant(room, Role::Caller, EXT),
        Err(Error::Capacity)
    );
    assert_eq!(sim.sfu.gauges().participants, 100);
}

#[test]
fn broadcast_admits_500_viewers_and_refuses_the_501st() {
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::broadcast()).unwrap();
    let presenter = sim.sfu.add_participant(room, Role::Presenter, EXT).unwrap();
    let cam = SimulcastCamera::new(5000);
    let track = sim.sfu.publish(sim.now, presenter, cam.spec("v0")).unwrap();
    for i in 0..MAX_BROADCAST_VIEWERS {
        let v = sim.sfu.add_participant(room, Role::Viewer, EXT).unwrap();
        sim.sfu
            .subscribe(sim.now, v, track, downstream(10_000 + 2 * i as u32, false))
            .unwrap();
    }
    assert_eq!(
        sim.sfu.add_participant(room, Role::Viewer, EXT),
        Err(Error::Capacity)
    );
    // Presenters have their own cap and are still admitted.
    sim.sfu.add_participant(room, Role::Presenter, EXT).unwrap();
}

#[test]
fn viewers_and_recorders_can_never_publish() {
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::broadcast()).unwrap();
    for role in [Role::Viewer, Role::Recorder] {
        let p = sim.sfu.add_participant(room, role, EXT).unwrap();
        assert_eq!(
            sim.sfu.publish(sim.now, p, audio_spec(1)),
            Err(Error::PublishNotAllowed)
        );
        // Media from it is dropped and counted, whatever it claims.
        assert_eq!(
            sim.sfu.handle_rtp(sim.now, p, opus(1, 1, 1, 10, true)),
            Err(PacketError::NotPublisher)
        );
    }
    assert_eq!(sim.sfu.metrics().dropped.not_publisher, 2);
}

#[test]
fn roles_are_confined_to_their_kind_of_room() {
    let mut sim = Sim::new(Config::default());
    let meeting = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let broadcast = sim.sfu.create_room(RoomPolicy::broadcast()).unwrap();
    for role in [Role::Viewer, Role::Presenter] {
        assert_eq!(
            sim.sfu.add_participant(meeting, role, EXT),
            Err(Error::RoleNotAllowed)
        );
    }
    assert_eq!(
        sim.sfu.add_participant(broadcast, Role::Caller, EXT),
        Err(Error::RoleNotAllowed)
    );
    sim.sfu
        .add_participant(meeting, Role::Recorder, EXT)
        .unwrap();
    sim.sfu
        .add_participant(broadcast, Role::Recorder, EXT)
        .unwrap();
}

#[test]
fn policies_beyond_the_hard_limits_are_refused() {
    let mut sim = Sim::new(Config::default());
    let too_big = RoomPolicy {
        max_publishers: 101,
        ..RoomPolicy::meeting()
    };
    assert_eq!(
        sim.sfu.create_room(too_big),
        Err(Error::PolicyExceedsLimits)
    );
    let too_many_viewers = RoomPolicy {
        max_viewers: 501,
        ..RoomPolicy::broadcast()
    };
    assert_eq!(
        sim.sfu.create_room(too_many_viewers),
        Err(Error::PolicyExceedsLimits)
    );
    let small = RoomPolicy {
        kind: RoomKind::Broadcast,
        max_viewers: 2,
        ..RoomPolicy::broadcast()
    };
    let room = sim.sfu.create_room(small).unwrap();
    sim.sfu.add_participant(room, Role::Viewer, EXT).unwrap();
    sim.sfu.add_participant(room, Role::Viewer, EXT).unwrap();
    assert_eq!(
        sim.sfu.add_participant(room, Role::Viewer, EXT),
        Err(Error::Capacity)
    );
}

#[test]
fn unknown_stale_and_cross_room_ids_are_refused() {
    let mut sim = Sim::new(Config::default());
    let a = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let b = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let pa = sim.sfu.add_participant(a, Role::Caller, EXT).unwrap();
    let pb = sim.sfu.add_participant(b, Role::Caller, EXT).unwrap();
    let track = sim.sfu.publish(sim.now, pa, audio_spec(7)).unwrap();
    assert_eq!(
        sim.sfu.subscribe(sim.now, pb, track, audio_downstream(1)),
        Err(Error::CannotSubscribe)
    );
    assert_eq!(
        sim.sfu.subscribe(sim.now, pa, track, audio_downstream(1)),
        Err(Error::CannotSubscribe),
        "no subscribing to one's own track"
    );
    // A removed participant's id stays dead even when its slot is reused.
    sim.sfu.remove_participant(sim.now, pb).unwrap();
    let reused = sim.sfu.add_participant(b, Role::Caller, EXT).unwrap();
    assert_eq!(reused.index(), pb.index());
    assert_ne!(reused, pb);
    assert_eq!(
        sim.sfu.handle_rtp(sim.now, pb, opus(7, 1, 1, 1, true)),
        Err(PacketError::UnknownParticipant)
    );
    assert_eq!(
        sim.sfu.add_participant(b, Role::Caller, EXT).map(|_| ()),
        Ok(())
    );
    sim.sfu.close_room(sim.now, a).unwrap();
    assert_eq!(
        sim.sfu.add_participant(a, Role::Caller, EXT),
        Err(Error::UnknownRoom)
    );
    assert_eq!(sim.sfu.gauges().rooms, 1);
    assert_eq!(sim.sfu.gauges().tracks.total(), 0);
}

#[test]
fn codecs_outside_e2ee_policy_and_bad_layouts_are_refused() {
    assert_eq!(
        sfu_forwarding::Codec::from_mime("video/H264"),
        Err(Error::CodecNotAllowed)
    );
    assert_eq!(
        sfu_forwarding::Codec::from_mime("AV1"),
        Err(Error::CodecNotAllowed)
    );
    assert_eq!(
        sfu_forwarding::Codec::from_mime("video/VP8"),
        Ok(sfu_forwarding::Codec::Vp8)
    );
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let p = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
    let mut spec = SimulcastCamera::new(1).spec("v0");
    spec.codec = sfu_forwarding::Codec::Opus;
    assert_eq!(
        sim.sfu.publish(sim.now, p, spec),
        Err(Error::CodecNotAllowed)
    );
    let mut spec = SimulcastCamera::new(1).spec("v0");
    spec.layers.push(spec.layers[0].clone());
    assert_eq!(sim.sfu.publish(sim.now, p, spec), Err(Error::InvalidTrack));
    let mut spec = SimulcastCamera::new(1).spec("v0");
    spec.layers[1].ssrc = spec.layers[0].ssrc;
    assert_eq!(sim.sfu.publish(sim.now, p, spec), Err(Error::InvalidTrack));
    sim.sfu
        .publish(sim.now, p, SimulcastCamera::new(1).spec("v0"))
        .unwrap();
    assert_eq!(
        sim.sfu
            .publish(sim.now, p, SimulcastCamera::new(10).spec("v0")),
        Err(Error::InvalidTrack),
        "mid already used"
    );
}

#[test]
fn one_participant_cannot_publish_without_bound() {
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let p = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
    for i in 0..sfu_forwarding::MAX_TRACKS_PER_PARTICIPANT {
        let mut spec = audio_spec(100 + i as u32);
        spec.mid = format!("a{i}");
        sim.sfu.publish(sim.now, p, spec).unwrap();
    }
    let mut spec = audio_spec(99);
    spec.mid = "last".into();
    assert_eq!(sim.sfu.publish(sim.now, p, spec), Err(Error::TooManyTracks));
}
