/**
 * What a user is told about a problem: server `error` messages (docs/protocol.md) and failed
 * joins in words a user understands, with what to do. The machine codes stay in the console
 * and the quality panel.
 *
 * @module call-errors
 */

/**
 * True for a `subscribe` refused because a track it named went away a moment before (its
 * publisher left or unpublished it while the subscription was on its way): a normal race, not
 * a problem to show. The client sends its set again without that track.
 */
export function isRacedSubscription(m) {
  return m?.code === 'media_error' && /unknown track/i.test(m.message ?? '');
}

/**
 * True for a refusal that only says someone left while a message to them was on its way: a
 * raced subscription, or a key message (`key_envelope`, `key_ack`, `key_request`) to a device
 * that the server has already taken off the roster (the roster update follows). Nothing for a
 * user to do; no banner.
 */
export function isDepartureRace(m) {
  return isRacedSubscription(m) || m?.code === 'not_in_roster';
}

const SERVER_TEXT = {
  media_error: 'The media server had a problem with your audio or video. If others stop hearing or seeing you, leave and join again.',
  rate_limited: 'Your browser sent too many messages at once; some were dropped. If the call misbehaves, leave and join again.',
  forbidden: 'Your access token does not allow that in this room.',
  room_full: 'The room is full: try again later.',
  room_locked: 'The room is locked: a moderator has to unlock it before you can join.',
  join_denied: 'A moderator did not let you in.',
  room_not_found: 'This room does not exist (any more): check the link.',
  bad_token: 'Your access token was refused: ask for a new link.',
  wrong_room: 'Your access token is for another room: ask for a new link.',
  token_expired: 'Your access token has expired: ask for a new link.',
  token_not_yet_valid: 'Your access token is not valid yet: check your computer\'s clock.',
  role_not_allowed: 'Your access token does not allow that role in this room.',
  media_unavailable: 'The media server is not available right now: try again in a minute.',
  unavailable: 'The call service cannot take new joins right now: try again in a minute.',
  connect_failed: 'The call server cannot be reached: check your network and try again.',
  closed: 'The connection to the call server was lost: check your network and try again.',
  timeout: 'The call server did not answer in time: check your network and try again.',
};

/** Join refusals whose sentence above says it all. */
const JOIN_REFUSALS = new Set(['room_full', 'room_locked', 'join_denied', 'room_not_found', 'bad_token', 'wrong_room', 'token_expired', 'token_not_yet_valid', 'role_not_allowed', 'forbidden', 'media_unavailable', 'unavailable', 'connect_failed', 'closed', 'timeout']);

/** A server `error` as a sentence for a banner. */
export function serverErrorText(m) {
  return SERVER_TEXT[m?.code] ?? 'Something went wrong with the call server. If the call misbehaves, leave and join again.';
}

const MEDIA_TEXT = {
  NotFoundError: 'No camera or microphone was found.',
  NotAllowedError: 'The browser was not allowed to use the camera or microphone: allow them in the site settings and try again.',
  NotReadableError: 'The camera or microphone is in use by another application: close it and try again.',
  OverconstrainedError: 'The camera cannot deliver the picture this call asks for.',
};

/** Why a join failed, as a sentence for the lobby (server refusals keep the server's words). */
export function joinFailureText(err) {
  if (MEDIA_TEXT[err?.name]) return MEDIA_TEXT[err.name];
  if (JOIN_REFUSALS.has(err?.code)) return SERVER_TEXT[err.code];
  if (typeof err?.code === 'string' && err.message) return `The call server refused to let you in: ${err.message}`;
  if (err instanceof DOMException || err?.name === 'TimeoutError') {
    return 'Your browser could not set up the encrypted media connection. Check your network and try again.';
  }
  return 'Joining failed. Check your network and try again.';
}
