/**
 * Who is in the call (`state.participants`) and whether to trust them: each roster device's
 * bundle verified and its identity key pinned (a changed key warns), the signed recording
 * policy (which recorders may get keys), the call security code with a calm notice when a
 * roster change changes it, safety numbers and verified marks, the others' `media_state` and
 * the active speakers.
 *
 * @module call/roster
 */
import { verifyBundle } from '../e2ee/identity.mjs';
import { securityCode } from '../e2ee/verification.mjs';
import { pairVerification } from '../e2ee/emoji.mjs';
import { applyMediaState } from '../media-state.js';
import { securityCodeChangedText } from '../e2ee-status.js';
import { recorderNamed, verifyRecordingPolicy } from '../recording-policy.js';

/** The participants of the call and their verification. */
export class Roster {
  /** @param {import('../call.js').Call} call the coordinator (its store, key session, negotiator, session) */
  constructor(call) {
    this.call = call;
    /** The verified recording policy of the room (null: none, or refused). */
    this.policy = null;
  }

  get state() {
    return this.call.state;
  }

  /**
   * `joined`: the recording policy checked, and the tiles of devices no longer in the room
   * dropped (a rejoin keeps the others').
   */
  async onJoined(j) {
    const s = this.state;
    if (j.recording) {
      try {
        this.policy = await verifyRecordingPolicy(j.recording, { room: this.call.options.room, trustedAdminKeys: this.call.options.trustedAdminKeys });
        s.recorded = { recorders: this.policy.recorders.map((r) => r.device), verified: true, retentionDays: this.policy.retentionDays };
      } catch (err) {
        // A recorded room whose policy does not verify: refuse to send keys to any recorder,
        // and say so in the badge.
        this.policy = null;
        s.recorded = { recorders: [], verified: false, problem: err.message };
        this.call.store.warn('recording-policy', `Recording policy refused: ${err.message}`);
      }
    }
    const present = new Set([j.device, ...(j.roster?.devices ?? []).map((d) => d.device)]);
    for (const id of [...s.participants.keys()]) if (!present.has(id)) s.participants.delete(id);
    if (s.pinned && !present.has(s.pinned)) s.pinned = null;
  }

  /** This device's own tile (`joined`), keyed by `identity`'s public identity key. */
  addSelf(j, identity) {
    this.state.participants.set(j.device, {
      device: j.device, identity: null, name: this.call.options.name || 'You', role: j.role, slot: j.slot,
      self: true, verified: true, keyChanged: false, speaking: 0, quality: null,
      identityKey: identity.identity.publicKey,
    });
  }

  /** A roster device: bundle verified, identity pinned, a tile, and a key recipient (or not). */
  async addDevice(d) {
    const s = this.state;
    const store = this.call.store;
    if (d.device === s.self.device) {
      const me = s.participants.get(d.device);
      me.identity = d.identity;
      me.name = d.name ?? me.name;
      return;
    }
    let verified;
    try {
      verified = await verifyBundle(d.bundle);
      if (verified.device !== d.device) throw new Error('bundle names another device');
    } catch (err) {
      store.warn('bad-bundle', `${d.name ?? d.identity ?? d.device}: device bundle refused (${err.code ?? err.message}); no keys are exchanged with it`);
      return;
    }
    let recipient = true;
    if (d.role === 'recorder' && !recorderNamed(this.policy, d)) {
      recipient = false;
      store.warn('recorder-refused', `A recorder (${d.device}) that the room's signed policy does not name joined; it gets no keys.`);
    }
    const pin = await this.call.options.identityStore.observe(d.identity ?? d.device, d.device, verified.identityKey);
    if (pin.result === 'changed') {
      store.warn('key-changed', `${d.name ?? d.identity}'s identity key changed since you last saw this device. Compare safety numbers before trusting it.`, { device: d.device });
    }
    s.participants.set(d.device, {
      device: d.device, identity: d.identity, name: d.name ?? d.identity ?? d.device, role: d.role, slot: d.slot,
      self: false, verified: pin.verified, keyChanged: pin.result === 'changed', speaking: 0, quality: null,
      identityKey: verified.identityKey, recipient,
    });
    this.call.keySession.keys.addDevice({ ...d, recipient });
  }

  /** A `roster` delta, in message order: tiles, chat notices, key recipients, code, subscriptions. */
  onRoster(m) {
    const c = this.call;
    c.session.serial(async () => {
      const now = performance.now();
      const change = { joined: [], left: [] };
      for (const d of m.added ?? []) {
        await this.addDevice(d);
        this._chatNotice(d.device, 'joined');
        const p = this.state.participants.get(d.device);
        if (p && !p.self) change.joined.push(p.name);
      }
      for (const id of m.removed ?? []) {
        const p = this.state.participants.get(id);
        if (p && !p.self) change.left.push(p.name);
        this._chatNotice(id, 'left');
        c.session.chat?.removeDevice(id);
        c.hands.forget(id);
        c.reactions.forget(id);
        this.state.participants.delete(id);
        // Its tracks are gone from the media node with it (their `track_unpublished` may come
        // later): a subscription naming one would be refused as a whole.
        c.negotiator.remote.forgetPublisher(id, p?.slot);
        if (p) c.keySession.media?.removeSender(p.slot);
        if (this.state.pinned === id) this.state.pinned = null;
      }
      c.keySession.keys.removeDevices(m.removed ?? [], now);
      c.negotiator.placeAll();
      await this.updateSecurityCode(change);
      c.negotiator.subscribe();
    });
  }

  /** "Carol joined" / "Carol left" in the chat, for devices with a tile (not viewers or recorders). */
  _chatNotice(device, what) {
    const p = this.state.participants.get(device);
    if (p && !p.self && (p.role === 'caller' || p.role === 'presenter')) this.call.session.chat?.notice(`${p.name} ${what}`);
  }

  /**
   * Recomputes the call security code. `change` (`{joined, left}` names) comes from a roster
   * delta: a code that changed then gets a calm notice saying why (the latest one only).
   */
  async updateSecurityCode(change = null) {
    const s = this.state;
    const roster = [...s.participants.values()]
      .filter((p) => p.identityKey)
      .map((p) => ({ device: p.device, identityKey: p.identityKey, role: p.role, slot: p.slot }));
    const before = s.securityCode;
    s.securityCode = await securityCode({ room: this.call.options.room, call: s.call, roster });
    if (change && before && before !== s.securityCode) {
      this.call.store.dropNotes('security-code');
      this.call.store.note('security-code', securityCodeChangedText(change));
    }
    this.call.store.changed();
  }

  /** The safety number (60 digits) and emoji sequence with `device` (docs/e2ee.md §4.1); computed on demand. */
  verificationCodesWith(device) {
    const p = this.state.participants.get(device);
    const me = this.state.participants.get(this.state.self.device);
    return pairVerification({ device: me.device, identityKey: me.identityKey }, { device: p.device, identityKey: p.identityKey });
  }

  /** Marks `device`'s current identity key as verified (persisted) or not. */
  async setVerified(device, verified) {
    const s = this.state;
    const p = s.participants.get(device);
    await this.call.options.identityStore.setVerified(p.identity ?? p.device, p.device, p.identityKey, verified);
    p.verified = verified;
    if (verified) p.keyChanged = false;
    s.warnings = s.warnings.filter((w) => !(verified && w.kind === 'key-changed' && w.device === device));
    this.call.store.changed();
  }

  /** Another device's `media_state` (or an entry of `joined.media_states`). */
  onMediaState(m) {
    const p = this.state.participants.get(m.device);
    if (!p || p.self) return;
    applyMediaState(p, m);
    this.call.store.changed();
  }

  /** `speakers`: the levels on the tiles and the active speaker. */
  onSpeakers(m) {
    const s = this.state;
    const levels = new Map((m.speakers ?? []).map((x) => [x.device, x.level]));
    for (const p of s.participants.values()) p.speaking = levels.get(p.device) ?? 0;
    s.activeSpeaker = m.speakers?.[0]?.device ?? s.activeSpeaker;
    this.call.store.changed();
  }

  /** The remote roster device holding KID slot `slot`, or null. */
  deviceOfSlot(slot) {
    return [...this.state.participants.values()].find((p) => p.slot === slot && !p.self)?.device ?? null;
  }

  /** A session ended: nobody speaks, no screen is shown (the tiles stay). */
  quiet() {
    for (const p of this.state.participants.values()) {
      p.speaking = 0;
      p.screenTrack = null;
    }
  }
}
