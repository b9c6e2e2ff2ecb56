/**
 * Moderation as this page sees it (docs/protocol.md §10), without the DOM: whether this device
 * is a moderator (`joined.moderator`), the room's lock and lobby and who waits in it (the
 * server's `moderation`, sent to moderators only), and the `moderate` actions a moderator sends.
 * The service checks every action; the UI offers them to moderators only.
 *
 * @module moderation
 */

/** The moderator actions of `moderate` that name a device. */
const DEVICE_ACTIONS = new Set(['ask_mute', 'remove', 'admit', 'deny', 'lower_hand']);

/** Every action of `moderate`. */
export const ACTIONS = ['ask_mute', 'remove', 'lock', 'unlock', 'lobby_on', 'lobby_off', 'admit', 'deny', 'end_call', 'lower_hand'];

/** A room's moderation state and the `moderate` messages that change it. */
export class Moderation {
  /**
   * @param {{send: (msg: object) => boolean, changed: () => void}} o `send` writes a message to
   *   the signaling socket; `changed` tells the UI to redraw.
   */
  constructor({ send, changed }) {
    this._send = send;
    this._changed = changed;
    /** What the UI draws: `{moderator, locked, lobby, waiting: [{device, identity, name}]}`. */
    this.state = { moderator: false, locked: false, lobby: false, waiting: [] };
  }

  /** A `joined`: whether this device moderates (its token grants `moderator`). */
  onJoined(joined) {
    this.state.moderator = joined.moderator === true;
    this._changed();
  }

  /** The server's `moderation` (moderators only): the lock, the lobby and who waits. */
  onModeration(m) {
    this.state.locked = m.locked === true;
    this.state.lobby = m.lobby === true;
    this.state.waiting = Array.isArray(m.waiting) ? m.waiting.filter((w) => typeof w?.device === 'string') : [];
    this._changed();
  }

  /**
   * Sends `moderate` with `action` (one of {@link ACTIONS}) about `device` where the action
   * names one. Returns whether it was sent.
   */
  act(action, device) {
    if (!ACTIONS.includes(action)) throw new Error(`unknown moderation action ${action}`);
    if (DEVICE_ACTIONS.has(action) && typeof device !== 'string') throw new Error(`${action} needs a device`);
    return this._send(DEVICE_ACTIONS.has(action) ? { type: 'moderate', action, device } : { type: 'moderate', action });
  }
}
