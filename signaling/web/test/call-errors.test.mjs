// What a user is told (call-errors.js), in Node: raced subscriptions are recognised, server
// codes and failed joins become sentences without machine codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDepartureRace, isRacedSubscription, joinFailureText, serverErrorText } from '../call-errors.js';

test('a subscription naming a track that just left, or a key message to a device that left, is a race; other errors are not', () => {
  assert.equal(isRacedSubscription({ code: 'media_error', message: 'refused by the media node: unknown track' }), true);
  assert.equal(isRacedSubscription({ code: 'media_error', message: 'participant not known to the media node' }), false);
  assert.equal(isRacedSubscription({ code: 'malformed', message: 'unknown track' }), false);
  // A key message to a device that left while it was on its way.
  assert.equal(isDepartureRace({ code: 'not_in_roster', message: 'device "x" is not in your roster' }), true);
  assert.equal(isDepartureRace({ code: 'media_error', message: 'refused by the media node: unknown track' }), true);
  assert.equal(isDepartureRace({ code: 'media_error', message: 'media node failure: x' }), false);
});

test('server errors and failed joins read as sentences without codes', () => {
  const texts = [
    serverErrorText({ code: 'media_error', message: 'refused by the media node: x' }),
    serverErrorText({ code: 'something_new', message: 'x' }),
    joinFailureText(new DOMException('Requested device not found', 'NotFoundError')),
    joinFailureText(new DOMException('offer refused', 'OperationError')),
    joinFailureText(Object.assign(new Error('room "x" is full'), { code: 'room_full' })),
    joinFailureText(Object.assign(new Error('no answer within 15000 ms'), { code: 'timeout' })),
    joinFailureText(new Error('boom')),
  ];
  for (const t of texts) {
    assert.match(t, /^[A-Z].*[.:]/, t);
    assert.doesNotMatch(t, /\(\d+\)|_|Error\b/, t);
  }
  assert.match(joinFailureText(new DOMException('Requested device not found', 'NotFoundError')), /camera or microphone/);
});
