// The tile order (tile-order.js) on virtual time, in plain Node: join order with this device
// first, the active speaker brought into view only from off-screen and at most once per interval.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MOVE_INTERVAL_MS, TileOrder } from '../tile-order.js';

const devices = ['me', 'a', 'b', 'c', 'd', 'e', 'f'];

test('tile_order_is_join_order_with_self_first_and_ignores_speakers_in_view', () => {
  const o = new TileOrder();
  const first = o.arrange({ devices, self: 'me', activeSpeaker: 'a', visible: 4, now: 0 });
  assert.deepEqual(first, ['me', 'a', 'b', 'c', 'd', 'e', 'f']);
  // Speakers already in view change nothing, however often.
  for (let t = 100, i = 0; i < 30; t += 100, i++) {
    assert.deepEqual(o.arrange({ devices, self: 'me', activeSpeaker: ['a', 'b', 'c'][i % 3], visible: 4, now: t }), first);
  }
  assert.equal(o.moves, 0);
});

test('tile_order_brings_an_off_screen_speaker_into_view_at_most_once_per_interval', () => {
  const o = new TileOrder();
  o.arrange({ devices, self: 'me', visible: 4, now: 0 });
  // `e` (off-screen) speaks: it takes the last visible place; nobody else moves.
  assert.deepEqual(o.arrange({ devices, self: 'me', activeSpeaker: 'e', visible: 4, now: 10_000 }), ['me', 'a', 'b', 'e', 'd', 'c', 'f']);
  // `f` speaks right after: no second move within the interval.
  assert.deepEqual(o.arrange({ devices, self: 'me', activeSpeaker: 'f', visible: 4, now: 10_000 + MOVE_INTERVAL_MS - 1 }), ['me', 'a', 'b', 'e', 'd', 'c', 'f']);
  assert.deepEqual(o.arrange({ devices, self: 'me', activeSpeaker: 'f', visible: 4, now: 10_000 + MOVE_INTERVAL_MS }), ['me', 'a', 'b', 'f', 'd', 'c', 'e']);
  assert.equal(o.moves, 2);
});

test('tile_order_newcomers_go_last_and_leavers_free_their_place', () => {
  const o = new TileOrder();
  o.arrange({ devices: ['me', 'a', 'b'], self: 'me', now: 0 });
  assert.deepEqual(o.arrange({ devices: ['me', 'a', 'b', 'z'], self: 'me', now: 1 }), ['me', 'a', 'b', 'z']);
  assert.deepEqual(o.arrange({ devices: ['me', 'b', 'z'], self: 'me', now: 2 }), ['me', 'b', 'z']);
  // A watch-only page (no own tile): the others only.
  assert.deepEqual(o.arrange({ devices: ['b', 'z'], self: 'me', now: 3 }), ['b', 'z']);
});
