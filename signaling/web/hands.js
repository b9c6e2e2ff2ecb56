/**
 * Raised hands (docs/protocol.md `hand`), without the DOM: whose hands are up and in which
 * order (the service's `order`, the room's count of raised hands), this device's own hand and
 * the `hand` message that moves it. The service stamps every `hand` with its sender's device,
 * so a page can only move its own hand; a moderator lowers another's with `moderate`
 * `lower_hand`. A departed device's hand goes with its roster removal (`forget`).
 *
 * @module hands
 */

/** The raised hands of one call. */
export class Hands {
  /**
   * @param {object} o
   * @param {(msg: object) => boolean} o.send writes a message to the signaling socket
   * @param {() => void} o.changed tells the UI to redraw
   * @param {(text: string) => void} [o.note] a calm note to this page ("Alice lowered your hand")
   * @param {(device: string) => (string | undefined)} [o.name] a participant's display name
   */
  constructor({ send, changed, note = () => {}, name = () => undefined }) {
    this._send = send;
    this._changed = changed;
    this._note = note;
    this._name = name;
    this.self = null;
    /** device -> order, for every raised hand. */
    this._raised = new Map();
    /**
     * What the UI draws: `queue` (devices with a hand up, earliest first), `mine` (this
     * device's hand is up, as the service last said), `loweredBy` (the moderator's device when
     * one lowered this device's hand, until it goes up again).
     */
    this.state = { queue: [], mine: false, loweredBy: null };
  }

  /**
   * A `joined`: the hands up now. A rejoin starts from the service's list again; the service
   * lowered this device's hand when its old session went, so a hand that was up goes up again
   * (at the end of the queue).
   */
  onJoined(joined) {
    const wasUp = this.state.mine && this.self === joined.device;
    this.self = joined.device;
    this._raised.clear();
    for (const h of Array.isArray(joined.hands) ? joined.hands : []) {
      if (typeof h?.device === 'string' && Number.isInteger(h.order)) this._raised.set(h.device, h.order);
    }
    this._update();
    if (wasUp && !this._raised.has(this.self)) this.set(true);
  }

  /** The server's `hand`: a device's hand went up or down (this device's own included). */
  onHand(m) {
    if (typeof m?.device !== 'string') return;
    if (m.raised === true && Number.isInteger(m.order)) this._raised.set(m.device, m.order);
    else if (m.raised === false) this._raised.delete(m.device);
    else return;
    if (m.device === this.self) this.state.loweredBy = m.raised ? null : (m.lowered_by ?? null);
    this._update();
    if (m.device === this.self && !m.raised && typeof m.lowered_by === 'string') this._note(`${this._name(m.lowered_by) ?? 'A moderator'} lowered your hand`);
  }

  /** A device left the room: its hand is down. */
  forget(device) {
    if (this._raised.delete(device)) this._update();
  }

  /** Whether `device`'s hand is up. */
  raised(device) {
    return this._raised.has(device);
  }

  /** Raises or lowers this device's hand (shown once the service echoes it). */
  set(raised) {
    return this._send({ type: 'hand', raised: !!raised });
  }

  /** Raises this device's hand when it is down, lowers it when it is up. */
  toggle() {
    return this.set(!this.state.mine);
  }

  _update() {
    this.state.queue = [...this._raised].sort((a, b) => a[1] - b[1]).map(([d]) => d);
    this.state.mine = this.self !== null && this._raised.has(this.self);
    this._changed();
  }
}
