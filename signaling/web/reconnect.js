/**
 * When and how the page reconnects to the signaling service (docs/protocol.md §1 "Reconnect"):
 * which WebSocket closes and which refused joins are worth another try, and the delays between
 * tries. Sans-IO: time and randomness are passed in, so `test/reconnect.test.mjs` checks it in
 * plain Node.
 *
 * @module reconnect
 */

/** The delays: first try within `firstMs`, doubling up to `maxMs`, no try after `giveUpMs`. */
export const BACKOFF = Object.freeze({ firstMs: 500, maxMs: 8000, giveUpMs: 120_000 });

/**
 * Whether a WebSocket close (`{code, reason}`) that came without `left` is worth a reconnect:
 * `{retry: true}` or `{retry: false, why}` (`why` is a `left` reason or an error code that
 * `call-errors.js` puts in words).
 *
 * - 1001 (the server shuts down or drains, or an idle timeout), 1006 (no close frame: a network
 *   blip, a crashed server), 1011–1014 (server error, restart, try again later): reconnect.
 * - 1008 for an overflowed outbound queue (the page stopped reading a while, e.g. in a frozen
 *   background tab): reconnect. 1008 for a message flood: no, the page would flood again.
 * - 1000: the server ended the session on purpose (after `left`, or the room closed): no.
 * - 1009 (a message too big) and 1002/1003/1007 (protocol violations): a bug in the page that
 *   another try would repeat: no.
 * - Anything else (a code this page does not know): reconnect, within the same bounds.
 */
export function closeVerdict({ code, reason = '' } = {}) {
  if (code === 1000) return { retry: false, why: /room closed/i.test(reason) ? 'room_closed' : 'connection_closed' };
  if (code === 1008) return /flood/i.test(reason) ? { retry: false, why: 'flood' } : { retry: true };
  if (code === 1009 || code === 1002 || code === 1003 || code === 1007) return { retry: false, why: 'protocol_violation' };
  return { retry: true };
}

/**
 * Join refusals (docs/protocol.md §6 codes) and client-side failures that may pass by
 * themselves: the server not reachable yet (`connect_failed`), the socket lost or silent
 * during the join (`closed`, `timeout`), no media node yet (`media_unavailable`), the media node
 * failing the new session (`media_error`), the service's shared state away (`unavailable`), the rate limit, a server fault. A refusal that says
 * the device may not come back (the token refused or expired, the room gone or full, the role
 * or the device refused) is final.
 */
const PASSING = new Set(['connect_failed', 'closed', 'timeout', 'media_unavailable', 'media_error', 'unavailable', 'rate_limited', 'internal']);

/**
 * Whether a failed reconnect attempt (`err` as `Call` throws it: a `SignalingError` with a
 * server code, or a browser error) is worth another one: `{retry: true}` or
 * `{retry: false, why}`. A browser error without a code (the peer connection failed to set up,
 * for example while the network is still down) is retried.
 */
export function attemptVerdict(err) {
  const code = typeof err?.code === 'string' ? err.code : null;
  if (code === null || PASSING.has(code)) return { retry: true };
  return { retry: false, why: code };
}

/**
 * The delays between reconnect attempts: exponential from {@link BACKOFF}.firstMs to
 * `maxMs`, each with "equal jitter" (between half of it and all of it, so that every client
 * of a restarted server does not come back in the same instant), the first one within
 * `firstMs` (protocol: "reconnect at once"), none once `giveUpMs` have passed since the
 * connection was lost.
 */
export class Backoff {
  /**
   * @param {object} [o]
   * @param {() => number} [o.random] uniform in [0, 1)
   * @param {typeof BACKOFF} [o.limits]
   */
  constructor({ random = Math.random, limits = BACKOFF } = {}) {
    this.random = random;
    this.limits = limits;
    this.since = null;
    this.attempts = 0;
  }

  /** The connection was lost at `now` (ms): the attempts count from here. */
  start(now) {
    this.since = now;
    this.attempts = 0;
  }

  /** Milliseconds to wait before the next attempt, or null: give up. */
  next(now) {
    const { firstMs, maxMs, giveUpMs } = this.limits;
    const n = this.attempts;
    const ceiling = n === 0 ? firstMs : Math.min(maxMs, firstMs * 2 ** n);
    const delay = n === 0 ? this.random() * ceiling : ceiling / 2 + (this.random() * ceiling) / 2;
    if (now + delay - this.since > giveUpMs) return null;
    this.attempts += 1;
    return Math.round(delay);
  }
}
