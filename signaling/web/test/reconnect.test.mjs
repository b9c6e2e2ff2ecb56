// When the page reconnects (reconnect.js), in Node on virtual time: which closes and which
// refused rejoins are retried, and the backoff's delays, jitter and give-up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKOFF, Backoff, attemptVerdict, closeVerdict } from '../reconnect.js';

test('reconnect_close_codes_decide_whether_to_come_back', () => {
  // The server drains or shuts down (protocol §1), an idle timeout, a network blip (no close frame).
  assert.deepEqual(closeVerdict({ code: 1001, reason: 'server shutting down' }), { retry: true });
  assert.deepEqual(closeVerdict({ code: 1001, reason: 'idle timeout' }), { retry: true });
  assert.deepEqual(closeVerdict({ code: 1006, reason: '' }), { retry: true });
  for (const code of [1011, 1012, 1013, 1014]) assert.deepEqual(closeVerdict({ code }), { retry: true });
  // A page that stopped reading a while: its queue overflowed, it may come back.
  assert.deepEqual(closeVerdict({ code: 1008, reason: 'dropped: outbound queue overflowed' }), { retry: true });
  // It flooded: coming back would flood again.
  assert.deepEqual(closeVerdict({ code: 1008, reason: 'message flood: rate limit exceeded' }), { retry: false, why: 'flood' });
  // Ended on purpose: after `left` (the call ended already) or a closed room.
  assert.deepEqual(closeVerdict({ code: 1000, reason: 'left the room' }), { retry: false, why: 'connection_closed' });
  assert.deepEqual(closeVerdict({ code: 1000, reason: 'room closed' }), { retry: false, why: 'room_closed' });
  // A message too big or a protocol violation: the page's own bug, another try repeats it.
  for (const code of [1002, 1003, 1007, 1009]) assert.deepEqual(closeVerdict({ code }), { retry: false, why: 'protocol_violation' });
  // A code this page does not know: retried, within the same bounds.
  assert.deepEqual(closeVerdict({ code: 4321 }), { retry: true });
  assert.deepEqual(closeVerdict(), { retry: true });
});

test('reconnect_refused_rejoins_stop_and_passing_failures_retry', () => {
  for (const code of ['connect_failed', 'closed', 'timeout', 'media_unavailable', 'media_error', 'unavailable', 'rate_limited', 'internal']) {
    assert.deepEqual(attemptVerdict({ code, message: 'x' }), { retry: true }, code);
  }
  // Auth refused, the room gone or full, the device refused: never come back on our own.
  for (const code of ['bad_token', 'token_expired', 'token_not_yet_valid', 'wrong_room', 'missing_grant', 'forbidden', 'room_not_found', 'room_full', 'role_not_allowed', 'duplicate_device', 'bad_bundle', 'unsupported_version']) {
    assert.deepEqual(attemptVerdict({ code, message: 'x' }), { retry: false, why: code }, code);
  }
  // A browser error without a code (peer connection setup while the network is down).
  assert.deepEqual(attemptVerdict(new DOMException('ICE failed', 'OperationError')), { retry: true });
  assert.deepEqual(attemptVerdict(new Error('x')), { retry: true });
});

test('reconnect_backoff_doubles_with_jitter_and_gives_up_after_two_minutes', () => {
  // Lowest jitter: each delay is half its ceiling (the first: 0, "at once").
  const low = new Backoff({ random: () => 0 });
  low.start(0);
  const lows = [];
  let now = 0;
  for (let d = low.next(now); d !== null; d = low.next(now)) {
    lows.push(d);
    now += d;
  }
  assert.deepEqual(lows.slice(0, 6), [0, 500, 1000, 2000, 4000, 4000]);
  assert.ok(lows.every((d) => d <= BACKOFF.maxMs));
  assert.ok(now <= BACKOFF.giveUpMs, `the last try starts within the give-up time (${now})`);
  assert.ok(now > BACKOFF.giveUpMs - BACKOFF.maxMs, `tries go on until close to it (${now})`);

  // Highest jitter: each delay is its ceiling, capped at 8 s.
  const high = new Backoff({ random: () => 0.999999 });
  high.start(1000);
  const highs = [];
  for (let i = 0; i < 7; i++) highs.push(high.next(1000));
  assert.deepEqual(highs, [500, 1000, 2000, 4000, 8000, 8000, 8000]);

  // Jitter spreads clients: two random sources give different delays, both within the bounds.
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const b = new Backoff({ random: rnd });
  b.start(0);
  const seen = new Set();
  for (let i = 1; i < 6; i++) {
    const d = b.next(0);
    const ceiling = Math.min(BACKOFF.maxMs, BACKOFF.firstMs * 2 ** (i - 1));
    assert.ok(i === 1 ? d <= ceiling : d >= ceiling / 2 && d <= ceiling, `attempt ${i}: ${d} within its bounds`);
    seen.add(d);
  }
  assert.equal(seen.size, 5);

  // Past the give-up time there is no next try; a fresh start (Rejoin) begins again.
  const g = new Backoff({ random: () => 0.5 });
  g.start(0);
  assert.equal(g.next(BACKOFF.giveUpMs + 1), null);
  g.start(BACKOFF.giveUpMs + 1);
  assert.equal(g.next(BACKOFF.giveUpMs + 1), 250);
  assert.equal(g.attempts, 1);
});
