/**
 * The keys of one signaling session (docs/protocol.md §4–§6) and the transform worker that uses
 * them: the `KeyManager` (keys.js, sans-IO) fed with `membership`, `key_envelope`, `key_ack`,
 * `key_request` and its timer; every sender key and received key handed to the worker
 * (`MediaCrypto`) and received keys to the chat; frames under an unknown KID turned into key
 * requests; the worker's counters into `state.e2ee` and the encryption badge's status.
 *
 * A rejoin makes a new key session (new keys for the new roster); the manager of one that ended
 * touches nothing.
 *
 * @module call/key-session
 */
import { KeyManager } from '../keys.js';
import { MediaCrypto } from '../media-crypto.js';
import { EncryptionStatus, remotePublishers } from '../e2ee-status.js';

/** The key manager and transform worker of the current session. */
export class KeySession {
  /** @param {import('../call.js').Call} call the coordinator (its store, session, negotiator and roster) */
  constructor(call) {
    this.call = call;
    /** @type {KeyManager | null} */
    this.keys = null;
    /** @type {MediaCrypto | null} */
    this.media = null;
    this.timer = null;
    this.encryption = new EncryptionStatus();
  }

  /**
   * A new key manager for the session `joined` (`j`) opened on `sig`, and a new transform worker.
   * Key messages go on `sig` only: a key message of a session that ended is never sent on the
   * next one (it would name the old call or slot).
   */
  open(j, sig, identity) {
    const c = this.call;
    // The socket this session's key messages go on: the one it opened on, or the one it was
    // resumed on (`resumeOn`); a later session has its own.
    const route = { sig };
    this.route = route;
    const keys = new KeyManager({
      identity,
      room: c.options.room,
      call: j.call,
      slot: j.slot,
      canPublish: c.state.self.canPublish,
      send: (m) => route.sig.send(m),
      // A key manager of a session that ended (a rejoin made a new one) touches nothing.
      onSenderKey: (k) => this.keys === keys && this._onSenderKey(k),
      onReceiverKey: (k) => {
        if (this.keys !== keys) return;
        this.media?.addReceiverKey(k);
        c.session.chat?.addKey(k);
      },
      onError: (err, ctx) => console.warn(`keys: ${ctx}: ${err.code ?? err.message}`),
    });
    this.keys = keys;
    this.media = new MediaCrypto();
    if (c.options.testMode) this.media.recordPlaintextHashes(20_000);
    this.media.onUnknownKid = ({ slot, generation }) => this.keys?.onUndecryptable({ slot, generation }, performance.now());
    this.media.onOpenedBy = (m) => c.negotiator.attribute(m.id, m.slot);
    this.media.onStats = (st) => this._onWorkerStats(st);
  }

  /**
   * The session was resumed on `sig` (`joined.resumed`: same call and slot, nobody rekeyed): the
   * key manager and worker go on, their key messages now on `sig`.
   */
  resumeOn(sig) {
    if (this.route) this.route.sig = sig;
  }

  /** Starts the key manager (publishers make their first generation) and its timer. */
  async start() {
    await this.keys.start(performance.now());
    this.schedule();
  }

  /** `membership`: ratchet for joiners, rekey after departures (in message order). */
  onMembership(m) {
    return this.call.session.serial(() => this.keys?.onMembership(m, performance.now())).then(() => this.schedule());
  }

  /** `key_envelope`: a key wrapped to this device (in message order, after the roster). */
  onKeyEnvelope(m) {
    return this.call.session.serial(() => this.keys?.onKeyEnvelope(m.envelope));
  }

  /** `key_ack`: a recorder's ack also releases strictly recorded senders. */
  onKeyAck(m) {
    if (this.call.state.participants.get(m.from)?.role === 'recorder') this.call.hold.recorderAcked();
    this.keys?.onKeyAck(m, performance.now());
    this.schedule();
  }

  /** `key_request`: another device lacks this device's key. */
  onKeyRequest(m) {
    return this.call.session.serial(() => this.keys?.onKeyRequest(m));
  }

  _onSenderKey(k) {
    const s = this.call.state;
    this.media?.setSenderKey({ ...k, slot: s.self.slot });
    s.e2ee.generation = k.generation;
    s.e2ee.step = k.step;
    this.call.store.changed();
  }

  /** Arms the timer for the key manager's next deadline (rekey timeout, rotation). */
  schedule() {
    clearTimeout(this.timer);
    const at = this.keys?.nextDeadline() ?? Infinity;
    if (!Number.isFinite(at)) return;
    this.timer = setTimeout(() => {
      this.call.session.serial(() => this.keys.poll(performance.now())).then(() => this.schedule());
    }, Math.max(0, at - performance.now()));
  }

  /** Stops the key timer (the manager and worker stay). */
  stopTimer() {
    clearTimeout(this.timer);
  }

  /** Closes the transform worker. */
  closeWorker() {
    this.media?.close();
  }

  /** The session ended: timer, worker and manager go; the badge starts over. */
  drop() {
    this.stopTimer();
    this.closeWorker();
    this.media = null;
    this.keys = null;
    this.encryption.reset();
  }

  _onWorkerStats(st) {
    const s = this.call.state;
    const e = s.e2ee;
    e.decrypted = st.totals.decrypted;
    e.failures = st.totals.failures;
    e.refusedEnvelopes = this.keys?.refusedEnvelopes ?? 0;
    this.call.negotiator.onReceiverStats(st.transforms);
    const selfKeyed = s.self?.canPublish ? e.generation !== null : null;
    const status = this.encryption.observe(performance.now(), st.senders, remotePublishers(s.participants, this.keys?.received ?? new Map()), selfKeyed);
    if (status.text !== e.status?.text || status.detail !== e.status?.detail) {
      e.status = status;
      this.call.store.changed();
    }
  }
}
