// Raised hands (hands.js), reactions (reactions.js), the hand notices (ui/notices.js
// `PresenceLog`) and the view choice (ui/view-mode.js), in plain Node on virtual time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hands } from '../hands.js';
import { classifyPlaintext, REACTIONS, ReactionBoard, ReactionLimiter, reactionPlaintext, SHOW_MS } from '../reactions.js';
import { PresenceLog } from '../ui/notices.js';
import { featuredDevice, STORAGE_KEY, ViewMode } from '../ui/view-mode.js';

function hands() {
  const sent = [];
  let changes = 0;
  const notes = [];
  const h = new Hands({ send: (m) => sent.push(m), changed: () => changes++, note: (t) => notes.push(t), name: (d) => ({ mod: 'Mo' })[d] });
  return { h, sent, notes, changes: () => changes };
}

test('hands_queue_in_the_order_they_went_up_and_follow_the_service', () => {
  const { h, sent, notes } = hands();
  h.onJoined({ device: 'me', hands: [{ device: 'b', order: 4 }, { device: 'a', order: 2 }, { device: 7, order: 1 }] });
  assert.deepEqual(h.state.queue, ['a', 'b'], 'earliest first; a malformed entry is skipped');
  assert.equal(h.state.mine, false);
  h.toggle();
  assert.deepEqual(sent, [{ type: 'hand', raised: true }]);
  assert.equal(h.state.mine, false, 'shown once the service echoes it');
  h.onHand({ device: 'me', raised: true, order: 5 });
  assert.deepEqual(h.state.queue, ['a', 'b', 'me']);
  assert.equal(h.state.mine, true);
  h.onHand({ device: 'a', raised: false });
  h.forget('b');
  assert.deepEqual(h.state.queue, ['me']);
  h.onHand({ device: 'me', raised: false, lowered_by: 'mod' });
  assert.equal(h.state.mine, false);
  assert.equal(h.state.loweredBy, 'mod');
  assert.deepEqual(notes, ['Mo lowered your hand'], 'this page is told who lowered its hand');
  h.onHand({ device: 'x', raised: 'yes' });
  h.onHand({ device: 'x', raised: true });
  assert.deepEqual(h.state.queue, [], 'a hand without its place or a bad flag is ignored');
});

test('a_hand_up_before_a_rejoin_goes_up_again', () => {
  const { h, sent } = hands();
  h.onJoined({ device: 'me' });
  h.onHand({ device: 'me', raised: true, order: 1 });
  h.onJoined({ device: 'me', hands: [] });
  assert.deepEqual(sent, [{ type: 'hand', raised: true }]);
});

test('reactions_are_sealed_as_a_kind_byte_and_the_emoji', () => {
  for (const r of REACTIONS) {
    const p = reactionPlaintext(r.emoji);
    assert.equal(p.charCodeAt(0), 1);
    assert.deepEqual(classifyPlaintext(p), { kind: 'reaction', emoji: r.emoji });
  }
  assert.throws(() => reactionPlaintext('💩'));
  assert.deepEqual(classifyPlaintext('\u0001💩'), { kind: 'unknown' });
  assert.deepEqual(classifyPlaintext('hello 👍'), { kind: 'text', text: 'hello 👍' });
});

test('reaction_sending_is_bounded_to_three_per_second', () => {
  const l = new ReactionLimiter();
  const sent = [];
  for (let t = 0; t < 10_000; t += 50) if (l.admit(t)) sent.push(t);
  for (const t of sent) {
    assert.ok(sent.filter((u) => u >= t && u < t + 1000).length <= 3, `at most 3 in the second from ${t}`);
  }
  // Sustained: about 2 per second, within the service's chat allowance (2 per second).
  assert.ok(sent.length <= 2 * 10 + 3, `${sent.length} in 10 s`);
  assert.ok(sent.length >= 18, `${sent.length} in 10 s`);
});

test('reactions_float_for_a_while_and_go_with_their_sender', () => {
  const b = new ReactionBoard();
  b.add('a', '👍', 0);
  b.add('b', '🎉', 1000);
  assert.equal(b.live(10).length, 2);
  assert.equal(b.nextExpiry(), SHOW_MS);
  assert.deepEqual(b.live(SHOW_MS + 1).map((e) => e.device), ['b']);
  b.forget('b');
  assert.deepEqual(b.live(SHOW_MS + 1), []);
  for (let i = 0; i < 20; i++) b.add('a', '👏', 5000 + i);
  assert.equal(b.live(5020).length, 5, 'a burst from one sender keeps the newest few');
});

test('presence_log_announces_a_raised_hand_once', () => {
  const people = new Map([
    ['me', { device: 'me', name: 'Me', self: true, role: 'caller' }],
    ['b', { device: 'b', name: 'Bea', role: 'caller' }],
    ['c', { device: 'c', name: 'Cy', role: 'caller' }],
  ]);
  const log = new PresenceLog({ ttlMs: 1000 });
  assert.deepEqual(log.observe(people, 0, ['c']), [], 'hands already up when the page came are the baseline');
  const live = log.observe(people, 10, ['c', 'b', 'me']);
  assert.deepEqual(live.map((e) => [e.kind, e.text]), [['hand', 'Bea raised their hand']], 'not this device');
  assert.equal(log.observe(people, 20, ['c', 'b']).length, 1, 'announced once');
  people.delete('b');
  const left = log.observe(people, 30, ['c']);
  assert.deepEqual(left.map((e) => e.text), ['Bea raised their hand', 'Bea left'], 'a hand notice and a leave notice of one person both stay');
});

test('view_mode_is_remembered_in_storage', () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const v = new ViewMode({ storage });
  assert.equal(v.view, 'grid');
  v.toggle();
  assert.equal(store.get(STORAGE_KEY), 'speaker');
  assert.equal(new ViewMode({ storage }).view, 'speaker');
  store.set(STORAGE_KEY, 'bogus');
  assert.equal(new ViewMode({ storage }).view, 'grid');
  const broken = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); } };
  const w = new ViewMode({ storage: broken });
  w.set('speaker');
  assert.equal(w.view, 'speaker', 'kept for the call without storage');
});

test('speaker_view_features_the_speaker_and_stays_when_the_room_goes_quiet', () => {
  const ordered = ['me', 'a', 'b', 'c'];
  assert.equal(featuredDevice({ ordered, self: 'me', activeSpeaker: null, previous: null }), 'a');
  assert.equal(featuredDevice({ ordered, self: 'me', activeSpeaker: 'c', previous: 'a' }), 'c');
  assert.equal(featuredDevice({ ordered, self: 'me', activeSpeaker: 'me', previous: 'b' }), 'b', 'never this device while others are here');
  assert.equal(featuredDevice({ ordered, self: 'me', activeSpeaker: null, previous: 'gone' }), 'a');
  assert.equal(featuredDevice({ ordered: ['me'], self: 'me', activeSpeaker: 'me', previous: null }), null);
});
