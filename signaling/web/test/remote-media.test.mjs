// The remote-media bookkeeping (remote-media.js) in plain Node: which receiver carries whose
// media by the KID, the server's word as a hint, the receive-slot map and its versions, and
// the source-mismatch counter. The browser tests drive the same module in real calls.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RemoteMedia, receiveSlotSections, trackOwnerFromId } from '../remote-media.js';

const track = (id, kind = 'video') => ({ id, kind });
const roster = () =>
  new Map([
    ['me', { device: 'me', slot: 0, self: true }],
    ['dev-A', { device: 'dev-A', slot: 1, self: false }],
    ['dev-B', { device: 'dev-B', slot: 2, self: false }],
    ['dev-C', { device: 'dev-C', slot: 3, self: false }],
  ]);
const bySlot = (participants) => (slot) => [...participants.values()].find((p) => p.slot === slot && !p.self)?.device ?? null;

function slotsMessage(version, entries) {
  return { type: 'slots', v: 1, version, slots: entries.map(([slot, kind, mid, source]) => ({ slot, kind, mid, track: source ? `TR_${source}_1` : null, source })) };
}

describe('remote media bookkeeping', () => {
  test('unpublished_screen_receiver_leaves_its_tile', () => {
    // The share stopped: its receiver keeps the last decoded frame, so it must not stay placed.
    const rm = new RemoteMedia();
    const people = roster();
    rm.announce({ id: 't4', publisher: 'dev-A', kind: 'video', source: 'screen' });
    const screen = track('t4');
    rm.addReceiver({ id: 'recv-4', mid: '4', track: screen, streamOwner: 'dev-A' });
    rm.attribute('recv-4', 1, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-A').screenTrack, screen);
    rm.unannounce('t4');
    rm.place(people);
    assert.equal(people.get('dev-A').screenTrack, null, 'gone with track_unpublished');
    // The same section reused for a new share (a new track id in the SDP): placed again.
    rm.announce({ id: 't7', publisher: 'dev-A', kind: 'video', source: 'screen' });
    rm.addReceiver({ id: 'recv-4', mid: '4', track: screen, streamOwner: 'dev-A', trackKey: 't7' });
    rm.place(people);
    assert.equal(people.get('dev-A').screenTrack, screen);
  });

  test('a receiver is shown only once its KID names a roster device, in that device\'s tile', () => {
    const rm = new RemoteMedia();
    const people = roster();
    rm.announce({ id: 'TR_dev-A_1', publisher: 'dev-A', kind: 'video', source: 'camera' });
    const t = track('TR_dev-A_1');
    rm.addReceiver({ id: 'recv-1', mid: '1', track: t, streamOwner: 'dev-A' });
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, null, 'no frame opened yet: no tile shows it');
    // A frame no roster key opens reports no slot: still nobody's.
    assert.equal(rm.attribute('recv-1', null, bySlot(people)), false);
    // A KID slot nobody in the roster holds attributes nothing either.
    assert.equal(rm.attribute('recv-1', 42, bySlot(people)), false);
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, null);
    assert.equal(rm.attribute('recv-1', 1, bySlot(people)), true);
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, t);
    assert.deepEqual(people.get('dev-A').transformIds, ['recv-1']);
    // A renegotiation fires `track` again for the same receiver: its attribution stays.
    rm.addReceiver({ id: 'recv-1', mid: '1', track: t, streamOwner: 'dev-A' });
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, t);
    assert.equal(rm.sourceMismatches, 0);
  });

  test('a server that names the wrong publisher is overruled by the KID and counted once per pair', () => {
    const rm = new RemoteMedia();
    const people = roster();
    const t = track('TR_dev-B_1');
    rm.addReceiver({ id: 'recv-2', mid: '2', track: t, streamOwner: null });
    // The server says dev-C; the frames open with dev-B's key (slot 2).
    rm.announce({ id: 'TR_dev-B_1', publisher: 'dev-C', kind: 'video', source: 'camera' });
    rm.attribute('recv-2', 2, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-B').videoTrack, t);
    assert.equal(people.get('dev-C').videoTrack, null);
    assert.equal(rm.sourceMismatches, 1);
    // The same disagreement reported again (every stats tick) is not a new one.
    rm.attribute('recv-2', 2, bySlot(people));
    rm.announce({ id: 'TR_dev-B_1', publisher: 'dev-C', kind: 'video', source: 'camera' });
    assert.equal(rm.sourceMismatches, 1);
    // A later announcement naming yet another device is.
    rm.announce({ id: 'TR_dev-B_1', publisher: 'dev-A', kind: 'video', source: 'camera' });
    assert.equal(rm.sourceMismatches, 2);
    // The truth counts nothing.
    rm.announce({ id: 'TR_dev-B_1', publisher: 'dev-B', kind: 'video', source: 'camera' });
    assert.equal(rm.sourceMismatches, 2);
  });

  test('a receiver whose KID sender changes leaves its old tile', () => {
    const rm = new RemoteMedia();
    const people = roster();
    const t = track('slot-v0');
    rm.addReceiver({ id: 'recv-slot-1', mid: '1', track: t });
    rm.attribute('recv-slot-1', 1, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, t);
    rm.attribute('recv-slot-1', 3, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, null);
    assert.equal(people.get('dev-C').videoTrack, t);
    // Its sender left: its keys went with it, nothing is attributed.
    rm.forgetPublisher('dev-C', 3);
    rm.place(people);
    assert.equal(people.get('dev-C').videoTrack, null);
  });

  test('slot maps apply in version order, unknown formats are ignored, empty slots are not listed', () => {
    const rm = new RemoteMedia();
    assert.equal(rm.applySlots(slotsMessage(3, [['a0', 'audio', '0', 'dev-A'], ['v0', 'video', '2', 'dev-B'], ['v1', 'video', '3', null], ['s0', 'screen', '4', null]])), true);
    assert.deepEqual(rm.filledSlots(), [{ slot: 'a0', kind: 'audio', mid: '0', source: 'dev-A' }, { slot: 'v0', kind: 'video', mid: '2', source: 'dev-B' }]);
    assert.equal(rm.applySlots(slotsMessage(2, [['v0', 'video', '2', 'dev-C']])), false, 'older than applied');
    assert.equal(rm.applySlots(slotsMessage(3, [['v0', 'video', '2', 'dev-C']])), false, 'same version');
    assert.equal(rm.applySlots({ ...slotsMessage(9, [['v0', 'video', '2', 'dev-C']]), v: 2 }), false, 'unknown format');
    assert.equal(rm.slots.version, 3);
    assert.equal(rm.applySlots(slotsMessage(4, [['v0', 'video', '2', 'dev-C']])), true);
    assert.deepEqual(rm.filledSlots().map((s) => s.source), ['dev-C']);
  });

  test('in a slot room the slot map is the server\'s word: a KID that differs from the slot\'s source counts', () => {
    const rm = new RemoteMedia();
    const people = roster();
    const audio = track('slot-a0', 'audio');
    const video = track('slot-v0');
    const screen = track('slot-s0');
    rm.addReceiver({ id: 'a', mid: '0', track: audio });
    rm.addReceiver({ id: 'v', mid: '2', track: video });
    rm.addReceiver({ id: 's', mid: '4', track: screen });
    rm.applySlots(slotsMessage(1, [['a0', 'audio', '0', 'dev-A'], ['v0', 'video', '2', 'dev-A'], ['s0', 'screen', '4', 'dev-B']]));
    rm.attribute('a', 1, bySlot(people));
    rm.attribute('v', 1, bySlot(people));
    rm.attribute('s', 2, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-A').audioTrack, audio);
    assert.equal(people.get('dev-A').videoTrack, video);
    assert.equal(people.get('dev-B').screenTrack, screen, 'a screen slot fills the screen track');
    assert.equal(rm.sourceMismatches, 0);
    // The map moves v0 to dev-C, but dev-A's frames keep coming until dev-C's keyframe: the
    // tile stays dev-A's, and the disagreement counts.
    rm.applySlots(slotsMessage(2, [['a0', 'audio', '0', 'dev-A'], ['v0', 'video', '2', 'dev-C'], ['s0', 'screen', '4', 'dev-B']]));
    rm.place(people);
    assert.equal(people.get('dev-A').videoTrack, video);
    assert.equal(people.get('dev-C').videoTrack, null);
    assert.equal(rm.sourceMismatches, 1);
    rm.attribute('v', 3, bySlot(people));
    rm.place(people);
    assert.equal(people.get('dev-C').videoTrack, video);
    assert.equal(rm.sourceMismatches, 1);
    // One audio sink per audio receiver, whoever speaks on it.
    assert.deepEqual(rm.audioSinks(), [{ id: 'a', track: audio }]);
  });

  test('a_slot_receiver_has_no_server_word_before_the_first_map', () => {
    // Frames open before the joiner's first `slots` map: the msid names the subscriber's slot
    // stream (`slots-me`), not a sender, so nothing disagrees yet.
    const rm = new RemoteMedia();
    rm.slotRoom = true;
    const people = roster();
    rm.addReceiver({ id: 'recv-1', mid: '1', track: track('v1'), streamOwner: 'slots-me' });
    rm.attribute('recv-1', 1, bySlot(people));
    assert.equal(rm.sourceMismatches, 0, 'no map yet: no mismatch');
    rm.applySlots(slotsMessage(1, [[0, 'video', '1', 'dev-A']]));
    assert.equal(rm.sourceMismatches, 0, 'the honest map agrees');
    rm.applySlots(slotsMessage(2, [[0, 'video', '1', 'dev-B']]));
    assert.equal(rm.sourceMismatches, 1, 'a map naming another sender counts');
  });

  test('receive-slot counts become recvonly sections: audio first, then video and screen', () => {
    assert.deepEqual(receiveSlotSections({ audio: 2, video: 3, screen: 1 }), ['audio', 'audio', 'video', 'video', 'video', 'video']);
    assert.equal(receiveSlotSections(undefined), null);
    assert.deepEqual(receiveSlotSections({ audio: -1, video: 'x', screen: 1 }), ['video']);
    assert.equal(trackOwnerFromId('TR_dev-A_1'), 'dev-A');
    assert.equal(trackOwnerFromId('t12'), null);
  });
});
