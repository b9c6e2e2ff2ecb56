/**
 * One call: the signaling session (docs/protocol.md §2), the peer connection to the SFU, the key
 * manager and the media encryption, and the state the UI draws (`call.state`, with a `change`
 * event after every update).
 *
 * Flow: `join` → `joined` (slot, roster, recording policy) → bundles verified and pinned → key
 * manager started (publishers) → the offer (non-trickle, complete) with the published tracks →
 * `answer`. Then roster deltas, membership notices (rekeying), key envelopes/acks/requests,
 * speakers, published tracks (subscriptions) or, in a receive-slot room, `slots` maps (no
 * subscriptions: the offer carries `joined.receive_slots` recvonly sections), SFU renegotiation
 * offers, and every few seconds a
 * `stats` message with the decrypt failures. On `media_reset` (the SFU restarted) a fresh peer
 * connection with the same local tracks and a new offer; keys are untouched.
 *
 * Reconnect (docs/protocol.md §1): when the WebSocket closes without `left` and the close is
 * worth another try (`reconnect.js`), the call goes to phase `reconnecting`: the tiles stay,
 * the session's parts (peer connection, transform worker, key manager, chat keys) are dropped,
 * and after a jittered backoff (or at once when the browser says it is back `online`) a new
 * socket joins as the same device (same identity keys and bundle, same token) and the whole
 * join runs again: fresh keys wrapped to the new roster, which re-keys the others (a rejoin is
 * a departure and a join for them), a new media session with the same local tracks, and the
 * microphone, camera and screen state sent again. `state.connection` says where it stands.
 *
 * Remote media is shown as its sender's only by the slot in the SFrame KIDs its frames were
 * opened with (the worker reports it); what the server says (`track_published`, `slots`, msid)
 * is a hint, and each disagreement counts in `state.e2ee.sourceMismatches` (remote-media.js).
 *
 * @module call
 */
import { createBundle, verifyBundle } from './e2ee/identity.mjs';
import { formatDigitGroups, safetyNumber, securityCode } from './e2ee/verification.mjs';
import { Stream } from './e2ee/kid.mjs';
import { ChatRoom } from './chat.js';
import { KeyManager } from './keys.js';
import { Moderation } from './moderation.js';
import { Hands } from './hands.js';
import { ReactionBoard } from './reactions.js';
import { applyMediaState, mediaStateMessage } from './media-state.js';
import { MediaCrypto } from './media-crypto.js';
import { openLocalMedia } from './local-media.js';
import { openTrack } from './devices.js';
import { EncryptionStatus, remotePublishers, securityCodeChangedText } from './e2ee-status.js';
import { gatheringComplete, isLoopbackCandidate, loopbackOnlySdp, testModeRtcConfig } from './loopback-only.js';
import { recorderNamed, verifyRecordingPolicy } from './recording-policy.js';
import { SignalingClient } from './signaling-client.js';
import { QualityMonitor, qualityLevel } from './stats.js';
import { RemoteMedia, msidTrackOfMid, receiveSlotSections } from './remote-media.js';
import { screenKey } from './tile-order.js';
import { isDepartureRace, isRacedSubscription, joinFailureText, serverErrorText } from './call-errors.js';
import { Backoff, attemptVerdict, closeVerdict } from './reconnect.js';

/** The size a screen share is subscribed at before the page has drawn it (a stage's). */
const SCREEN_UNDRAWN = { width: 1280, height: 720 };

/** Simulcast encodings of the camera (docs/architecture.md §2.1: VP8, 3 layers). */
export const CAMERA_LAYERS = [
  { rid: 'low', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'medium', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'high', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

const STATS_INTERVAL_MS = 5000;

/** The mids of the media sections in which `sdp`'s author sends (`sendrecv` or `sendonly`). */
export function remoteSendingMids(sdp) {
  const mids = new Set();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    const dir = /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(section)?.[1] ?? 'sendrecv';
    if (mid !== undefined && (dir === 'sendrecv' || dir === 'sendonly')) mids.add(mid);
  }
  return mids;
}

/** `joined.ice_servers` (docs/protocol.md) as `RTCIceServer`s. */
export function rtcIceServers(list) {
  return (Array.isArray(list) ? list : [])
    .filter((x) => x && Array.isArray(x.urls) && x.urls.length && typeof x.username === 'string' && typeof x.credential === 'string')
    .map((x) => ({ urls: x.urls, username: x.username, credential: x.credential }));
}

/** A call in a room, from `join` to `leave`. */
export class Call extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {string} o.token JWT from the application
   * @param {string} [o.name] display name
   * @param {string} [o.signalingUrl] default: `/v1/rtc` on this origin
   * @param {import('./identity-store.js').IdentityStore} o.identityStore
   * @param {boolean} [o.watchOnly] broadcast viewer: publish nothing
   * @param {boolean} [o.testMode] loopback only: ICE servers on 127.0.0.0/8 only, 127.0.0.0/8 candidates only
   * @param {boolean} [o.relayOnly] `iceTransportPolicy: "relay"`: media only through the TURN servers of `joined`
   * @param {string[]} [o.trustedAdminKeys] admin keys whose recording policies are accepted
   * @param {MediaStream} [o.localStream] the camera and microphone the pre-join screen opened
   *   (a disabled track joins muted / camera off); default: opened at join (local-media.js)
   * @param {string} [o.speaker] the audio output device id (`setSinkId`); default: the browser's
   */
  constructor(o) {
    super();
    this.options = o;
    this.signaling = new SignalingClient(o.signalingUrl);
    this.pc = null;
    this.media = null;
    this.keys = null;
    this.local = { mic: null, camera: null, screen: null, screenSender: null };
    /** Remote receivers, what the server says they carry, and whose KIDs they open. */
    this.remote = new RemoteMedia();
    /** `joined.receive_slots` as transceiver kinds (null: a per-track room). */
    this._receiveSlots = null;
    this._bundles = new Map(); // device -> verified bundle
    /** Strict recording: this device's published track ids -> sender transform id. */
    this._ownTracks = new Map();
    /** Strict recording: sender transform ids still held (no recorder receives them yet). */
    this._heldSenders = new Set();
    /** Strict recording: held senders a `recording_ready` named, waiting for a recorder's key ack. */
    this._readySenders = new Set();
    /** Strict recording: a recorder acknowledged a key of this device (keys outlive media sessions). */
    this._recorderHasKey = false;
    this._keyTimer = null;
    this._statsTimer = null;
    this._lastReported = { failures: 0, decrypted: 0 };
    this._backoff = new Backoff();
    this._localStream = o.localStream ?? null;
    this._encryption = new EncryptionStatus();
    /** What the UI draws. */
    this.state = {
      /** `idle`, `joining`, `in-call`, `reconnecting` (the socket was lost; tiles stay), `left`, `error`. */
      phase: 'idle',
      error: null,
      /**
       * The signaling connection: `{status: 'connected' | 'reconnecting' | 'failed', attempt,
       * retryAt, lastAttemptAt, offline, reconnects, mediaResets}`; `failed` once the retries
       * gave up (a `rejoin()` starts them again).
       */
      connection: { status: 'connected', attempt: 0, retryAt: null, lastAttemptAt: null, offline: false, reconnects: 0, mediaResets: 0 },
      room: o.room,
      call: null,
      kind: null,
      self: null,
      participants: new Map(),
      activeSpeaker: null,
      pinned: null,
      securityCode: null,
      recorded: null,
      /**
       * Strict recording: true while this device's microphone/camera are held because no
       * recorder receives them yet (docs/protocol.md `recording_ready`); the view says why.
       */
      recordingHold: false,
      warnings: [],
      notices: [],
      serverErrors: [],
      local: { micOn: false, cameraOn: false, screenOn: false },
      /** The audio output device id remote audio plays through (null: the browser's default). */
      speaker: o.speaker ?? null,
      quality: null,
      /** One audio element each: every remote audio receiver (`[{id, track}]`). */
      remoteAudio: [],
      chat: null,
      /** `status`: what the badge says (e2ee-status.js), from the worker's reports. */
      e2ee: { generation: null, step: null, decrypted: 0, failures: 0, refusedEnvelopes: 0, sourceMismatches: 0, status: null },
    };
    /** Moderator controls (moderation.js); `state.moderation` is what the UI draws of them. */
    this.moderation = new Moderation({ send: (m) => this.signaling.send(m), changed: () => this._changed() });
    this.state.moderation = this.moderation.state;
    /** Raised hands (hands.js) and the reactions on screen (reactions.js). */
    this.hands = new Hands({
      send: (m) => this.signaling.send(m),
      changed: () => this._changed(),
      note: (text) => this._note('hand-lowered', text),
      name: (d) => this.state.participants.get(d)?.name,
    });
    this.state.hands = this.hands.state;
    this.reactions = new ReactionBoard();
    this.state.reactions = this.reactions;
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** A warning banner; the same one twice (a rejoin verifies everything again) shows once. */
  _warn(kind, text, extra = {}) {
    if (this.state.warnings.some((w) => w.kind === kind && w.text === text)) return;
    this.state.warnings.push({ kind, text, at: Date.now(), ...extra });
    this._changed();
  }

  /** An informational note (not a problem): drawn calmly, never as an error banner; once. */
  _note(kind, text) {
    if (this.state.notices.some((n) => n.kind === kind && n.text === text)) return;
    this.state.notices.push({ kind, text, at: Date.now() });
    this._changed();
  }

  /**
   * A server `error`: the code and the server's words go to the console and the quality panel
   * (the last 20); a banner, in words a user understands, only for a real problem. Refusals
   * that only say someone just left are normal races (`isDepartureRace`): a subscription that
   * named a departed track is sent again without it, a key message to a departed device is
   * simply dropped.
   */
  _onServerError(m) {
    console.warn(`server error ${m.code}: ${m.message}`);
    this.state.serverErrors = [...this.state.serverErrors, { code: m.code, message: m.message, at: Date.now() }].slice(-20);
    if (isRacedSubscription(m)) {
      this._lastSubscription = null;
      clearTimeout(this._resubscribeTimer);
      this._resubscribeTimer = setTimeout(() => this._subscribe(), 250);
    }
    if (isDepartureRace(m)) {
      this._changed();
      return;
    }
    this._warn('server', serverErrorText(m), { code: m.code });
  }

  /** Joins the room and starts media. Rejects with the server's error (code + message). */
  async join() {
    const o = this.options;
    this.state.phase = 'joining';
    this._changed();
    try {
      this.identity = await o.identityStore.deviceIdentity();
      // The same bundle (device id and keys) on every reconnect: the room replaces the device.
      this._bundle = await createBundle(this.identity);
      await this._openSession();
      this.state.phase = 'in-call';
      this._watchNetwork();
      this._sendMediaState();
      this._changed();
    } catch (err) {
      // Leave the room at once: a device whose join failed must not stay in the others' roster.
      console.warn('join failed:', err.code ?? err.name, err.message);
      this._abandon();
      this.state.phase = 'error';
      this.state.error = { code: typeof err.code === 'string' ? err.code : (err.name ?? 'client'), message: err.message, text: joinFailureText(err) };
      this._changed();
      throw err;
    }
  }

  /**
   * One session on a fresh socket, for the first join and every reconnect: connect, `join` with
   * this device's bundle, verify the roster and start the keys, then media.
   */
  async _openSession() {
    const o = this.options;
    // The constructor's client on the first join; a new one for each reconnect.
    if (this.signaling.ws) this.signaling = new SignalingClient(o.signalingUrl);
    const sig = this.signaling;
    await sig.connect();
    this._listen(sig);
    // A room with its lobby on: the page says so (phase `waiting`) until a moderator decides.
    const onWaiting = () => {
      if (this.state.phase === 'joining') this.state.phase = 'waiting';
      this._changed();
    };
    const joined = await sig.join({ room: o.room, token: o.token, name: o.name, bundle: this._bundle, onWaiting });
    this.moderation.onJoined(joined);
    this.hands.onJoined(joined);
    // Key envelopes that arrive while the roster is still being verified wait for it (they
    // queue behind this): opened before, the sender would be unknown and the key refused.
    const onJoined = this._onJoined(joined);
    this._queue = onJoined.catch(() => {});
    await onJoined;
    this._joined = true;
    if (joined.media) await this._startMedia();
    else this._warn('media', 'No media server is attached to this room: keys and the roster work, audio and video do not.');
  }

  /** After a failed join: `leave` if the room has us, then media, timers and the socket closed. */
  _abandon() {
    this._unwatchNetwork();
    clearTimeout(this._keyTimer);
    clearInterval(this._statsTimer);
    this.monitor?.stop();
    for (const t of [this.local.mic, this.local.camera, this.local.screen]) t?.stop();
    try {
      if (this._joined) this.signaling.send({ type: 'leave' });
    } catch {
      // The socket is already gone: closing it below (or its loss) removes the device too.
    }
    this.pc?.close();
    this.media?.close();
    this.signaling.close();
  }

  async _onJoined(j) {
    const s = this.state;
    // New keys for this session: a recorder must acknowledge one of them again.
    this._recorderHasKey = false;
    this._iceServers = j.ice_servers ?? [];
    this._receiveSlots = receiveSlotSections(j.receive_slots);
    s.call = j.call;
    s.kind = j.kind;
    s.self = { device: j.device, slot: j.slot, role: j.role, canPublish: !!j.can_publish && !this.options.watchOnly, canSubscribe: !!j.can_subscribe };
    if (j.recording) {
      try {
        this.policy = await verifyRecordingPolicy(j.recording, { room: this.options.room, trustedAdminKeys: this.options.trustedAdminKeys });
        s.recorded = { recorders: this.policy.recorders.map((r) => r.device), verified: true, retentionDays: this.policy.retentionDays };
      } catch (err) {
        // A recorded room whose policy does not verify: refuse to send keys to any recorder,
        // and say so in the badge.
        this.policy = null;
        s.recorded = { recorders: [], verified: false, problem: err.message };
        this._warn('recording-policy', `Recording policy refused: ${err.message}`);
      }
    }
    // A rejoin keeps the tiles of the devices still in the room and drops the others'.
    const present = new Set([j.device, ...(j.roster?.devices ?? []).map((d) => d.device)]);
    for (const id of [...s.participants.keys()]) if (!present.has(id)) s.participants.delete(id);
    if (s.pinned && !present.has(s.pinned)) s.pinned = null;
    // Bound to this session's socket: a key message of a session that ended is never sent on
    // the next one (it would name the old call or slot).
    const sig = this.signaling;
    const keys = new KeyManager({
      identity: this.identity,
      room: this.options.room,
      call: j.call,
      slot: j.slot,
      canPublish: s.self.canPublish,
      send: (m) => sig.send(m),
      // A key manager of a session that ended (a rejoin made a new one) touches nothing.
      onSenderKey: (k) => this.keys === keys && this._onSenderKey(k),
      onReceiverKey: (k) => {
        if (this.keys !== keys) return;
        this.media?.addReceiverKey(k);
        this.chat?.addKey(k);
      },
      onError: (err, ctx) => console.warn(`keys: ${ctx}: ${err.code ?? err.message}`),
    });
    this.keys = keys;
    this.media = new MediaCrypto();
    if (this.options.testMode) this.media.recordPlaintextHashes(20_000);
    this.media.onUnknownKid = (m) => this._onUnknownKid(m);
    this.media.onOpenedBy = (m) => this._attribute(m.id, m.slot);
    this.media.onStats = (st) => this._onWorkerStats(st);
    s.participants.set(j.device, {
      device: j.device, identity: null, name: this.options.name || 'You', role: j.role, slot: j.slot,
      self: true, verified: true, keyChanged: false, speaking: 0, quality: null,
      identityKey: this.identity.identity.publicKey,
    });
    const earlier = this.chat?.state;
    this.chat = new ChatRoom({
      room: this.options.room,
      call: j.call,
      self: { device: j.device, slot: j.slot },
      participant: (d) => s.participants.get(d),
      senderKey: () => this.keys?.current ?? null,
      send: (m) => sig.send(m),
      changed: () => this._changed(),
      onReaction: (device, emoji) => {
        this.reactions.add(device, emoji, performance.now());
        this._changed();
      },
    });
    // After a rejoin the conversation so far stays on screen (its keys went with the session).
    if (earlier) Object.assign(this.chat.state, { messages: earlier.messages, unread: earlier.unread, open: earlier.open });
    s.chat = this.chat.state;
    for (const d of j.roster?.devices ?? []) await this._addDevice(d);
    for (const ms of j.media_states ?? []) this._onMediaState(ms);
    for (const t of j.tracks ?? []) this.remote.announce(t);
    await this._updateSecurityCode();
    await this.keys.start(performance.now());
    this._scheduleKeys();
  }

  async _addDevice(d) {
    const s = this.state;
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
      this._warn('bad-bundle', `${d.name ?? d.identity ?? d.device}: device bundle refused (${err.code ?? err.message}); no keys are exchanged with it`);
      return;
    }
    this._bundles.set(d.device, d.bundle);
    let recipient = true;
    if (d.role === 'recorder' && !recorderNamed(this.policy, d)) {
      recipient = false;
      this._warn('recorder-refused', `A recorder (${d.device}) that the room's signed policy does not name joined; it gets no keys.`);
    }
    const pin = await this.options.identityStore.observe(d.identity ?? d.device, d.device, verified.identityKey);
    if (pin.result === 'changed') {
      this._warn('key-changed', `${d.name ?? d.identity}'s identity key changed since you last saw this device. Compare safety numbers before trusting it.`, { device: d.device });
    }
    s.participants.set(d.device, {
      device: d.device, identity: d.identity, name: d.name ?? d.identity ?? d.device, role: d.role, slot: d.slot,
      self: false, verified: pin.verified, keyChanged: pin.result === 'changed', speaking: 0, quality: null,
      identityKey: verified.identityKey, recipient,
    });
    this.keys.addDevice({ ...d, recipient });
  }

  /**
   * Recomputes the call security code. `change` (`{joined, left}` names) comes from a roster
   * delta: a code that changed then gets a calm notice saying why (the latest one only).
   */
  async _updateSecurityCode(change = null) {
    const roster = [...this.state.participants.values()]
      .filter((p) => p.identityKey)
      .map((p) => ({ device: p.device, identityKey: p.identityKey, role: p.role, slot: p.slot }));
    const before = this.state.securityCode;
    this.state.securityCode = await securityCode({ room: this.options.room, call: this.state.call, roster });
    if (change && before && before !== this.state.securityCode) {
      this.state.notices = this.state.notices.filter((n) => n.kind !== 'security-code');
      this._note('security-code', securityCodeChangedText(change));
    }
    this._changed();
  }

  /** The 60-digit safety number with `device` (12 groups of 5); computed on demand. */
  async safetyNumberWith(device) {
    const p = this.state.participants.get(device);
    const me = this.state.participants.get(this.state.self.device);
    const n = await safetyNumber({ device: me.device, identityKey: me.identityKey }, { device: p.device, identityKey: p.identityKey });
    return formatDigitGroups(n);
  }

  /** Marks `device`'s current identity key as verified (persisted) or not. */
  async setVerified(device, verified) {
    const p = this.state.participants.get(device);
    await this.options.identityStore.setVerified(p.identity ?? p.device, p.device, p.identityKey, verified);
    p.verified = verified;
    if (verified) p.keyChanged = false;
    this.state.warnings = this.state.warnings.filter((w) => !(verified && w.kind === 'key-changed' && w.device === device));
    this._changed();
  }

  _listen(sig) {
    sig.on('roster', (m) => this._onRoster(m));
    sig.on('membership', (m) => this._serial(() => this.keys?.onMembership(m, performance.now())).then(() => this._scheduleKeys()));
    sig.on('key_envelope', (m) => this._serial(() => this.keys?.onKeyEnvelope(m.envelope)));
    sig.on('key_ack', (m) => {
      // Strict recording: a recorder that acknowledged a key of this device can open its frames.
      if (this.state.participants.get(m.from)?.role === 'recorder') {
        this._recorderHasKey = true;
        this._releaseReady();
      }
      this.keys?.onKeyAck(m, performance.now());
      this._scheduleKeys();
    });
    sig.on('key_request', (m) => this._serial(() => this.keys?.onKeyRequest(m)));
    sig.on('speakers', (m) => this._onSpeakers(m));
    sig.on('media_state', (m) => this._onMediaState(m));
    // After the key messages before it: the key a message is sealed under arrives first.
    sig.on('chat', (m) => this._serial(() => this.chat?.receive(m)));
    sig.on('track_published', (m) => {
      if (m.track?.publisher === this.state.self?.device) this._ownTrackPublished(m.track);
      this.remote.announce(m.track);
      this._noteMismatches();
      this._subscribe();
    });
    sig.on('track_unpublished', (m) => {
      this.remote.unannounce(m.track);
      this._placeAll(); // a stopped screen share leaves the stage now, not with its last frame
      this._subscribe();
    });
    sig.on('slots', (m) => {
      if (this.remote.applySlots(m)) this._placeAll();
    });
    sig.on('offer', (m) => this._serial(() => this._onRemoteOffer(m)));
    sig.on('recording_ready', (m) => this._onRecordingReady(m));
    sig.on('media_reset', (m) => this._serial(() => this._restartMedia(m.reason)));
    sig.on('error', (m) => this._onServerError(m));
    sig.on('moderation', (m) => this.moderation.onModeration(m));
    sig.on('hand', (m) => this.hands.onHand(m));
    sig.on('mute_requested', (m) => this._onMuteRequested(m));
    // Only this session's socket can end the call (a lost one's `left` `replaced` is old news).
    sig.on('left', (m) => sig === this.signaling && this._ended(m.reason));
    sig.addEventListener('close', (e) => this._onSocketClosed(sig, e.detail));
  }

  /**
   * The socket closed. After `left` the call has ended already; in a call, a close worth
   * another try (`closeVerdict`) starts reconnecting, any other ends the call with its reason.
   * During a join or a reconnect attempt the attempt itself fails and decides.
   */
  _onSocketClosed(sig, { code, reason }) {
    if (sig !== this.signaling || this.state.phase !== 'in-call') return;
    const verdict = closeVerdict({ code, reason });
    console.warn(`signaling closed (${code}${reason ? ` ${reason}` : ''}): ${verdict.retry ? 'reconnecting' : 'not coming back'}`);
    if (!verdict.retry) {
      this._ended(verdict.why);
      return;
    }
    this.state.phase = 'reconnecting';
    this.state.connection.reconnects += 1;
    this._dropSession();
    this._backoff.start(performance.now());
    this._runReconnect();
  }

  /**
   * Everything of the session that ended but the tiles, the local tracks and the identity: the
   * peer connection and its worker, the key manager (its keys were for that roster), timers,
   * the remote tracks. A screen share ends, as on `media_reset`.
   */
  _dropSession() {
    clearTimeout(this._keyTimer);
    clearInterval(this._statsTimer);
    clearTimeout(this._subTimer);
    clearTimeout(this._resubscribeTimer);
    this.monitor?.stop();
    this.monitor = null;
    this._mediaReady = false;
    this._joined = false;
    this.pc?.close();
    this.pc = null;
    this.media?.close();
    this.media = null;
    this.keys = null;
    this._lastReported = { failures: 0, decrypted: 0 };
    this._encryption.reset();
    this.local.screen?.stop();
    this.local.screen = null;
    this.local.screenTransceiver = null;
    this.state.local.screenOn = false;
    this.remote.reset();
    this._lastSubscription = null;
    for (const p of this.state.participants.values()) {
      p.speaking = 0;
      p.screenTrack = null;
    }
    this._placeAll();
  }

  /**
   * Reconnect attempts until one joins, one is refused for good (the call ends with the
   * reason), or the backoff gives up (`state.connection.status` `failed`: the view offers
   * `rejoin()`).
   */
  async _runReconnect() {
    const run = {};
    this._reconnectRun = run;
    const conn = this.state.connection;
    for (;;) {
      const delay = this._backoff.next(performance.now());
      if (delay === null) {
        console.warn('reconnect: giving up');
        Object.assign(conn, { status: 'failed', retryAt: null });
        this._changed();
        return;
      }
      Object.assign(conn, { status: 'reconnecting', attempt: this._backoff.attempts, retryAt: Date.now() + delay });
      this._changed();
      await this._pause(delay);
      if (this._reconnectRun !== run || this.state.phase !== 'reconnecting') return;
      let failure = null;
      conn.lastAttemptAt = Date.now();
      try {
        await this._openSession();
        // A socket lost again while the join ran is one more failed attempt.
        if (this.signaling.ws?.readyState !== WebSocket.OPEN) failure = { code: 'closed', message: 'signaling closed during the rejoin' };
      } catch (err) {
        failure = err;
      }
      if (this._reconnectRun !== run || this.state.phase !== 'reconnecting') {
        // Left while the attempt ran: what it opened goes too.
        if (this.state.phase === 'left') {
          this.pc?.close();
          this.media?.close();
          this.signaling.close();
        }
        return;
      }
      if (!failure) break;
      console.warn('reconnect attempt failed:', failure.code ?? failure.name, failure.message);
      this._dropSession();
      this.signaling.close();
      const verdict = attemptVerdict(failure);
      if (!verdict.retry) {
        this._ended(verdict.why);
        return;
      }
    }
    this.state.phase = 'in-call';
    Object.assign(conn, { status: 'connected', attempt: 0, retryAt: null });
    this._sendMediaState();
    this._subscribe();
    this._changed();
  }

  /** Waits `ms`, or less when the browser comes back `online` (or `rejoin()` is pressed). */
  _pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => wake(), ms);
      const wake = () => {
        clearTimeout(timer);
        if (this._wake === wake) this._wake = null;
        resolve();
      };
      this._wake = wake;
    });
  }

  /** After the retries gave up: try again (the same device, the same token), from a fresh backoff. */
  rejoin() {
    if (this.state.phase !== 'reconnecting' || this.state.connection.status !== 'failed') return;
    this._backoff.start(performance.now());
    this._runReconnect();
  }

  /** `online` wakes a waiting reconnect at once; `offline` is shown with the status. */
  _watchNetwork() {
    if (this._network || typeof addEventListener !== 'function') return;
    const online = () => {
      this.state.connection.offline = false;
      this._changed();
      this._wake?.();
    };
    const offline = () => {
      this.state.connection.offline = true;
      this._changed();
    };
    addEventListener('online', online);
    addEventListener('offline', offline);
    this._network = { online, offline };
  }

  _unwatchNetwork() {
    if (!this._network) return;
    removeEventListener('online', this._network.online);
    removeEventListener('offline', this._network.offline);
    this._network = null;
  }

  /** Runs async handlers one after another, in message order. */
  _serial(fn) {
    this._queue = (this._queue ?? Promise.resolve()).then(fn).catch((err) => console.warn('call:', err));
    return this._queue;
  }

  _onRoster(m) {
    this._serial(async () => {
      const now = performance.now();
      const change = { joined: [], left: [] };
      for (const d of m.added ?? []) {
        await this._addDevice(d);
        this._chatNotice(d.device, 'joined');
        const p = this.state.participants.get(d.device);
        if (p && !p.self) change.joined.push(p.name);
      }
      for (const id of m.removed ?? []) {
        const p = this.state.participants.get(id);
        if (p && !p.self) change.left.push(p.name);
        this._chatNotice(id, 'left');
        this.chat?.removeDevice(id);
        this.hands.forget(id);
        this.reactions.forget(id);
        this.state.participants.delete(id);
        // Its tracks are gone from the media node with it (their `track_unpublished` may come
        // later): a subscription naming one would be refused as a whole.
        this.remote.forgetPublisher(id, p?.slot);
        if (p) this.media?.removeSender(p.slot);
        if (this.state.pinned === id) this.state.pinned = null;
      }
      this.keys.removeDevices(m.removed ?? [], now);
      this._placeAll();
      await this._updateSecurityCode(change);
      this._subscribe();
    });
  }

  /** "Carol joined" / "Carol left" in the chat, for devices with a tile (not viewers or recorders). */
  _chatNotice(device, what) {
    const p = this.state.participants.get(device);
    if (p && !p.self && (p.role === 'caller' || p.role === 'presenter')) this.chat?.notice(`${p.name} ${what}`);
  }

  /** Another device's `media_state` (or an entry of `joined.media_states`). */
  _onMediaState(m) {
    const p = this.state.participants.get(m.device);
    if (!p || p.self) return;
    applyMediaState(p, m);
    this._changed();
  }

  /** Tells the others this device's microphone, camera and screen state. */
  _sendMediaState() {
    if (!this.state.self?.canPublish || this.state.phase !== 'in-call') return;
    this.signaling.send(mediaStateMessage(this.state.local));
  }

  /** Raises or lowers this device's hand. */
  setHand(raised) {
    return this.hands.set(raised);
  }

  /** Sends a reaction (sealed end to end like chat); false beyond the page's allowance. */
  react(emoji) {
    return this.chat.react(emoji);
  }

  /** Sends a chat message to everyone in the call (sealed end to end). */
  sendChat(text) {
    return this.chat.send(text);
  }

  _onSenderKey(k) {
    this.media?.setSenderKey({ ...k, slot: this.state.self.slot });
    this.state.e2ee.generation = k.generation;
    this.state.e2ee.step = k.step;
    this._changed();
  }

  _scheduleKeys() {
    clearTimeout(this._keyTimer);
    const at = this.keys?.nextDeadline() ?? Infinity;
    if (!Number.isFinite(at)) return;
    this._keyTimer = setTimeout(() => {
      this._serial(() => this.keys.poll(performance.now())).then(() => this._scheduleKeys());
    }, Math.max(0, at - performance.now()));
  }

  _onUnknownKid({ slot, generation }) {
    this.keys?.onUndecryptable({ slot, generation }, performance.now());
  }

  _onWorkerStats(st) {
    const e = this.state.e2ee;
    e.decrypted = st.totals.decrypted;
    e.failures = st.totals.failures;
    e.refusedEnvelopes = this.keys?.refusedEnvelopes ?? 0;
    let moved = false;
    for (const t of st.transforms) {
      const r = this.remote.receivers.get(t.id);
      if (!r) continue;
      r.failures = t.failures;
      moved = this.remote.attribute(t.id, t.lastSlot, (slot) => this._deviceOfSlot(slot)) || moved;
    }
    if (moved) this._placeAll();
    const selfKeyed = this.state.self?.canPublish ? this.state.e2ee.generation !== null : null;
    const status = this._encryption.observe(performance.now(), st.senders, remotePublishers(this.state.participants, this.keys?.received ?? new Map()), selfKeyed);
    if (status.text !== e.status?.text || status.detail !== e.status?.detail) {
      e.status = status;
      this._changed();
    }
  }

  /** The remote roster device holding KID slot `slot`, or null. */
  _deviceOfSlot(slot) {
    return [...this.state.participants.values()].find((p) => p.slot === slot && !p.self)?.device ?? null;
  }

  /** The worker: receiver `id` opens frames with KID slot `slot`'s key now. */
  _attribute(id, slot) {
    if (this.remote.attribute(id, slot, (s) => this._deviceOfSlot(s))) this._placeAll();
  }

  _noteMismatches() {
    if (this.state.e2ee.sourceMismatches === this.remote.sourceMismatches) return;
    this.state.e2ee.sourceMismatches = this.remote.sourceMismatches;
    this._changed();
  }

  _onSpeakers(m) {
    const levels = new Map((m.speakers ?? []).map((x) => [x.device, x.level]));
    for (const p of this.state.participants.values()) p.speaking = levels.get(p.device) ?? 0;
    this.state.activeSpeaker = m.speakers?.[0]?.device ?? this.state.activeSpeaker;
    this._changed();
  }

  _rtcConfig() {
    const extra = { ...this.media.peerConnectionConfig() };
    // `relayOnly`: only relay candidates (through TURN), to test the path UDP-blocking networks
    // take. Without it, host candidates reach the ICE-lite SFU directly when UDP is open.
    if (this.options.relayOnly) extra.iceTransportPolicy = 'relay';
    // The TURN servers and credentials of `joined.ice_servers` (none configured: an explicitly
    // empty list, so no stack falls back to a public STUN server).
    const iceServers = rtcIceServers(this._iceServers);
    return this.options.testMode ? testModeRtcConfig(extra, iceServers) : { ...extra, iceServers };
  }

  /** This device's own track was published: its sender transform, by track id. */
  _ownTrackPublished(track) {
    const id = { microphone: 'send-mic', camera: 'send-camera', screen: 'send-screen' }[track.source];
    if (id) this._ownTracks.set(track.id, id);
  }

  /**
   * `recording_ready`: a recorder receives these tracks of this device, so their senders may
   * send (video from a keyframe) once a recorder holds this device's key (its `key_ack`).
   * Once every held sender is released the waiting note goes.
   */
  _onRecordingReady(m) {
    for (const track of m.tracks ?? []) {
      const id = this._ownTracks.get(track);
      if (id && this._heldSenders.has(id)) this._readySenders.add(id);
    }
    this._releaseReady();
  }

  /** Releases the held senders named ready, once a recorder holds this device's key. */
  _releaseReady() {
    if (!this._recorderHasKey) return;
    for (const id of this._readySenders) {
      this._heldSenders.delete(id);
      this.media?.release(id);
    }
    this._readySenders.clear();
    const waiting = this._heldSenders.size > 0;
    if (this.state.recordingHold !== waiting) {
      this.state.recordingHold = waiting;
      this._changed();
    }
  }

  /**
   * Attaches the encrypting transform to a sender; in a recorded room (strict recording) it is
   * held until a `recording_ready` names its track.
   */
  _attachSender(sender, options) {
    // Only a verified policy holds: an unverified one gives its recorder no key, so holding
    // would wait for nothing (the page warns about that policy instead).
    const held = !!this.state.recorded?.verified;
    if (held) {
      this._heldSenders.add(options.id);
      this.state.recordingHold = true;
    }
    this.media.attachSender(sender, { ...options, held });
  }

  async _startMedia() {
    this.pc = new RTCPeerConnection(this._rtcConfig());
    this.pc.addEventListener('track', (e) => this._onTrack(e));
    const self = this.state.self;
    const tracks = [];
    // A new media session's tracks are new: each waits for its own `recording_ready`.
    this._ownTracks = new Map();
    this._heldSenders = new Set();
    this._readySenders = new Set();
    this.state.recordingHold = false;
    if (self.canPublish) {
      // After a media reset the local tracks are reused as they are (muted stays muted).
      const stream = this._localStream ?? (await openLocalMedia((kind, text) => this._note(kind, text)));
      this._localStream = stream;
      this.local.mic = stream.getAudioTracks()[0] ?? null;
      this.local.camera = stream.getVideoTracks()[0] ?? null;
      if (this.local.mic) {
        const t = this.pc.addTransceiver(this.local.mic, { direction: 'sendonly', streams: [stream] });
        this._attachSender(t.sender, { id: 'send-mic', kind: 'audio', stream: Stream.AUDIO });
        this._decryptIncoming(t.receiver, 'recv-mic', 'audio');
        this._preferCodec(t, 'audio', /opus/i);
        tracks.push({ transceiver: t, kind: 'audio', source: 'microphone' });
      }
      if (this.local.camera) {
        const t = this.pc.addTransceiver(this.local.camera, { direction: 'sendonly', streams: [stream], sendEncodings: CAMERA_LAYERS });
        this._attachSender(t.sender, { id: 'send-camera', kind: 'video', stream: Stream.CAMERA });
        this._decryptIncoming(t.receiver, 'recv-camera', 'video');
        this._preferCodec(t, 'video', /vp8/i);
        tracks.push({ transceiver: t, kind: 'video', source: 'camera', layers: CAMERA_LAYERS.map((l) => l.rid) });
      }
      // A reused track keeps its mute (`enabled`) through a media reset or a rejoin.
      this.state.local.micOn = !!this.local.mic && this.local.mic.enabled;
      this.state.local.cameraOn = !!this.local.camera && this.local.camera.enabled;
      this.state.local.hasMic = !!this.local.mic;
      this.state.local.hasCamera = !!this.local.camera;
      const me = this.state.participants.get(self.device);
      me.videoTrack = this.local.camera;
    }
    if (this._receiveSlots) {
      // A receive-slot room (docs/protocol.md §6 `slots`): every slot's recvonly section is in
      // the first offer, audio first, then video and screen; the SFU maps sources onto them.
      this._receiveSlots.forEach((kind, i) => {
        const t = this.pc.addTransceiver(kind, { direction: 'recvonly' });
        this._decryptIncoming(t.receiver, `recv-slot-${i}`, kind);
        // Only the codecs the SFU forwards (Opus; VP8 and its RTX), as the native client
        // offers: with every default codec the default slot counts (31 sections) make an offer
        // over the 60 KiB SDP cap (docs/architecture.md §7.23).
        if (kind === 'audio') this._preferCodec(t, 'audio', /opus/i, null);
        else this._preferCodec(t, 'video', /vp8/i, /rtx/i);
        limitHeaderExtensions(t, SLOT_HEADER_EXTENSIONS);
      });
    } else if (!tracks.length) {
      // Receive-only sections (docs/protocol.md `offer`): one for audio, one for video.
      const audio = this.pc.addTransceiver('audio', { direction: 'recvonly' });
      const video = this.pc.addTransceiver('video', { direction: 'recvonly' });
      this._decryptIncoming(audio.receiver, 'recv-audio', 'audio');
      this._decryptIncoming(video.receiver, 'recv-video', 'video');
    }
    this._published = tracks;
    await this._negotiate();
    // The media node knows this device from its answer on: subscriptions wait for it.
    this._mediaReady = true;
    this.monitor = new QualityMonitor(this.pc, (q) => this._onQuality(q));
    this._statsTimer = setInterval(() => this._sendStats(), STATS_INTERVAL_MS);
    this._subscribe();
    this._changed();
  }

  /**
   * `media_reset`: the SFU lost this device's media session. Closes the peer connection, forgets
   * the remote tracks and starts a fresh session (new peer connection, same local tracks, a new
   * offer). A screen share ends; the sender keys and the key exchange are untouched.
   */
  async _restartMedia(reason) {
    if (!this.pc || this.state.phase !== 'in-call') return;
    console.warn(`media_reset: ${reason}`);
    this.state.connection.mediaResets += 1;
    this._note('media-reset', 'The media server restarted: reconnecting audio and video…');
    clearInterval(this._statsTimer);
    this.monitor?.stop();
    this.pc.close();
    this.local.screen?.stop();
    this.local.screen = null;
    this.local.screenTransceiver = null;
    this.state.local.screenOn = false;
    this.remote.reset();
    this._lastSubscription = null;
    this._placeAll();
    await this._startMedia();
    // Back: the note goes, and the others hear that the screen share ended.
    this.state.notices = this.state.notices.filter((n) => n.kind !== 'media-reset');
    this._sendMediaState();
    this._changed();
  }

  /**
   * Puts the codecs matching `pattern` first and keeps only those and the ones matching
   * `extras` (default: RTX, RED, FEC, comfort noise, DTMF; null: none).
   */
  _preferCodec(transceiver, kind, pattern, extras = /rtx|red|ulpfec|cn|telephone-event/i) {
    const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
    const preferred = caps.filter((c) => pattern.test(c.mimeType));
    const rest = extras ? caps.filter((c) => extras.test(c.mimeType)) : [];
    if (preferred.length && typeof transceiver.setCodecPreferences === 'function') {
      try {
        transceiver.setCodecPreferences([...preferred, ...rest]);
      } catch {
        // Some browsers refuse codec lists with extras; the default order still offers VP8/Opus.
      }
    }
  }

  _localSdp() {
    const sdp = this.pc.localDescription.sdp;
    return this.options.testMode ? loopbackOnlySdp(sdp) : sdp;
  }

  _remoteSdp(sdp) {
    return this.options.testMode ? loopbackOnlySdp(sdp) : sdp;
  }

  async _negotiate() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await gatheringComplete(this.pc);
    const tracks = this._published
      .filter((t) => t.transceiver.mid !== null && t.transceiver.direction !== 'inactive')
      .map((t) => ({ mid: t.transceiver.mid, kind: t.kind, source: t.source, ...(t.layers ? { layers: t.layers } : {}) }));
    const answer = this.signaling.next(['answer'], 15_000);
    this.signaling.send({ type: 'offer', sdp: this._localSdp(), ...(this.state.self.canPublish ? { tracks } : {}) });
    const m = await answer;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: this._remoteSdp(m.sdp) });
  }

  async _onRemoteOffer(m) {
    if (!this.pc) return;
    const sdp = this._remoteSdp(m.sdp);
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    // The SFU may forward a track on a media section this device opened for sending (it turns
    // the section `sendrecv`) as well as on new sections. Our transceiver would answer
    // `sendonly` there and never receive: widen its direction to take the forwarded media.
    const sending = remoteSendingMids(sdp);
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === null || !sending.has(t.mid)) continue;
      if (t.direction === 'sendonly') t.direction = 'sendrecv';
      else if (t.direction === 'inactive') t.direction = 'recvonly';
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await gatheringComplete(this.pc);
    this.signaling.send({ type: 'answer', sdp: this._localSdp() });
  }

  _onTrack(e) {
    // Transceivers this device created already decrypt (see _decryptIncoming); a section the
    // SFU added gets its transform here, once (a renegotiation fires `track` again).
    const id = this._decryptIncoming(e.receiver, `recv-${e.transceiver.mid ?? this.remote.receivers.size}`, e.track.kind);
    // Shown in a tile once the worker says whose key opens its frames (`_attribute`).
    this.remote.addReceiver({
      id,
      mid: e.transceiver.mid,
      track: e.track,
      streamOwner: e.streams?.[0]?.id ?? null,
      trackKey: msidTrackOfMid(this.pc.remoteDescription?.sdp, e.transceiver.mid),
    });
    e.track.addEventListener('ended', () => {
      this.remote.removeReceiver(id);
      this._placeAll();
    });
    this._placeAll();
  }

  /**
   * Puts the decrypting transform on `receiver` unless it has one; returns its transform id.
   * Called when a transceiver is created as well as on `track`: the SFU may forward media on a
   * section this device opened for sending (it turns it `sendrecv`), and Chromium (156) never
   * runs frames through a receiver transform set after a negotiation in which that receiver
   * did not receive. So every transceiver decrypts from its creation.
   */
  _decryptIncoming(receiver, id, kind) {
    this._decrypting ??= new WeakMap();
    const have = this._decrypting.get(receiver);
    if (have) return have;
    this._decrypting.set(receiver, id);
    this.media.attachReceiver(receiver, { id, kind });
    return id;
  }

  /** Every remote track into its KID sender's tile, and every audio receiver into a sink. */
  _placeAll() {
    this.remote.place(this.state.participants);
    this.state.remoteAudio = this.remote.audioSinks();
    this.state.e2ee.sourceMismatches = this.remote.sourceMismatches;
    this._changed();
  }

  /** Sends the wanted tracks: everything visible, with the tile sizes the UI reported. */
  _subscribe() {
    if (!this._mediaReady || this.state.phase === 'left' || !this.state.self?.canSubscribe) return;
    // A receive-slot room subscribes nobody per track: the SFU fills the slots.
    if (this._receiveSlots) return;
    const visible = this.visibleSizes ?? new Map();
    const subscriptions = [];
    for (const t of this.remote.subscribable(this.state.self.device)) {
      if (t.kind === 'audio') {
        subscriptions.push({ track: t.id });
        continue;
      }
      // The tile its frames are shown in (by KID) once known; the server's word before.
      const shownAs = this.remote.deviceOfTrack(t.id) ?? t.publisher;
      // A screen share has its own tile on the stage (ui/stage.js), sized apart from the camera's;
      // one not drawn yet (its frames must arrive to name their sender) is meant for the stage.
      const size = t.source === 'screen' ? (visible.get(screenKey(shownAs)) ?? SCREEN_UNDRAWN) : (visible.get(shownAs) ?? { width: 0, height: 0 });
      const sub = { track: t.id, width: Math.round(size.width), height: Math.round(size.height) };
      if (this.state.pinned === shownAs || t.source === 'screen') sub.layer = 'high';
      subscriptions.push(sub);
    }
    // The UI reports tile sizes on every redraw: send only a changed set (each `subscribe`
    // replaces the whole set on the SFU).
    const msg = { type: 'subscribe', subscriptions: subscriptions.slice(0, 512) };
    const key = JSON.stringify(msg.subscriptions);
    if (key === this._lastSubscription) return;
    this._lastSubscription = key;
    this.signaling.send(msg);
  }

  /** The UI reports tile sizes (device -> {width, height}); hidden tiles are 0×0. */
  setVisibleSizes(sizes) {
    this.visibleSizes = sizes;
    clearTimeout(this._subTimer);
    this._subTimer = setTimeout(() => this._subscribe(), 300);
  }

  /** Pins a participant's tile (null to unpin). */
  pin(device) {
    this.state.pinned = this.state.pinned === device ? null : device;
    this._subscribe();
    this._changed();
  }

  _onQuality(q) {
    this.state.quality = { ...q, level: qualityLevel({ loss: q.loss, rtt: q.rtt ?? 0 }), decryptFailures: this.state.e2ee.failures };
    const byTrack = new Map();
    for (const r of this.remote.receivers.values()) byTrack.set(r.track.id, r);
    for (const p of this.state.participants.values()) if (!p.self) p.quality = null;
    const me = this.state.participants.get(this.state.self.device);
    const high = q.outbound.filter((o) => o.kind === 'video' && o.width).sort((a, b) => b.width - a.width)[0];
    if (me) {
      me.quality = { level: this.state.quality.level, bitrate: q.sendBitrate, loss: q.loss, rtt: q.rtt, width: high?.width ?? null, height: high?.height ?? null, layer: high?.rid ?? null, decryptFailures: 0 };
    }
    for (const inb of q.inbound) {
      const r = byTrack.get(inb.trackIdentifier);
      const p = r?.device && this.state.participants.get(r.device);
      if (!p) continue;
      const prev = p.quality ?? { bitrate: 0, loss: 0, decryptFailures: 0 };
      p.quality = {
        bitrate: prev.bitrate + inb.bitrate,
        loss: Math.max(prev.loss, inb.loss),
        rtt: q.rtt,
        width: inb.width ?? prev.width,
        height: inb.height ?? prev.height,
        layer: inb.layer ?? prev.layer,
        decryptFailures: prev.decryptFailures + (r.failures ?? 0),
      };
      p.quality.level = qualityLevel({ loss: p.quality.loss, rtt: q.rtt ?? 0 });
    }
    this._changed();
  }

  _sendStats() {
    const e = this.state.e2ee;
    const q = this.state.quality;
    const msg = {
      type: 'stats',
      decrypt_failures: Math.max(0, e.failures - this._lastReported.failures),
      frames_decrypted: Math.max(0, e.decrypted - this._lastReported.decrypted),
    };
    if (q?.rtt !== null && q?.rtt !== undefined) msg.rtt_seconds = q.rtt;
    if (q) msg.loss_ratio = q.loss;
    const jitters = (q?.inbound ?? []).map((x) => x.jitter).filter((x) => typeof x === 'number');
    if (jitters.length) msg.jitter_seconds = Math.max(...jitters);
    this._lastReported = { failures: e.failures, decrypted: e.decrypted };
    this.signaling.send(msg);
  }

  /**
   * A moderator asked this device to mute: the page mutes its own microphone (the service
   * cannot: it never holds the media keys) and says so with its `media_state`, and tells the
   * user, who may unmute again.
   */
  _onMuteRequested(m) {
    const by = this.state.participants.get(m.by)?.name ?? 'A moderator';
    if (this.state.local.micOn) this.setMic(false);
    this._note('mute-requested', `${by} asked you to mute. Your microphone is off; unmute when you want to speak.`);
  }

  /** A moderator action (`moderate`, docs/protocol.md §10); the service refuses it from anyone else. */
  moderate(action, device) {
    return this.moderation.act(action, device);
  }

  /** Mutes or unmutes the microphone (the track keeps sending encrypted silence). */
  setMic(on) {
    if (this.local.mic) this.local.mic.enabled = on;
    this.state.local.micOn = !!this.local.mic && on;
    this._sendMediaState();
    this._changed();
  }

  /** Turns the camera picture on or off. */
  setCamera(on) {
    if (this.local.camera) this.local.camera.enabled = on;
    this.state.local.cameraOn = !!this.local.camera && on;
    this._sendMediaState();
    this._changed();
  }

  /**
   * Switches the microphone (`kind` 'audio') or camera ('video') to device `id` during the call:
   * a new track on the same sender (`replaceTrack`: no renegotiation, the transform and the KID
   * stay), muted or off as the old one was. Rejects (the old track stays) when the device
   * cannot be opened, or when the call has no sender of that kind (it joined without one).
   */
  async useDevice(kind, id) {
    const old = kind === 'audio' ? this.local.mic : this.local.camera;
    if (!old) throw new DOMException(`this call sends no ${kind === 'audio' ? 'microphone' : 'camera'}`, 'InvalidStateError');
    const track = await openTrack(kind, id);
    track.enabled = old.enabled;
    const source = kind === 'audio' ? 'microphone' : 'camera';
    const sending = this.pc && this._published?.find((t) => t.source === source);
    try {
      if (sending) await sending.transceiver.sender.replaceTrack(track);
    } catch (err) {
      track.stop();
      throw err;
    }
    this._localStream.removeTrack(old);
    this._localStream.addTrack(track);
    old.stop();
    if (kind === 'audio') this.local.mic = track;
    else {
      this.local.camera = track;
      const me = this.state.participants.get(this.state.self.device);
      if (me) me.videoTrack = track;
    }
    this._changed();
  }

  /** Plays remote audio through output device `id` (the view calls `setSinkId`). */
  setSpeaker(id) {
    this.state.speaker = id || null;
    this._changed();
  }

  /** Starts or stops sharing the screen (a third sendonly section, KID stream 2). */
  async setScreen(on) {
    if (!this.pc || !this.state.self.canPublish) return;
    if (on && !this.local.screen) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = stream.getVideoTracks()[0];
      track.addEventListener('ended', () => this.setScreen(false));
      let t = this.local.screenTransceiver;
      if (t) {
        await t.sender.replaceTrack(track);
        t.direction = 'sendonly';
      } else {
        t = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
        this._attachSender(t.sender, { id: 'send-screen', kind: 'video', stream: Stream.SCREEN_VIDEO });
        this._changed();
        this._decryptIncoming(t.receiver, 'recv-screen', 'video');
        this._preferCodec(t, 'video', /vp8/i);
        this.local.screenTransceiver = t;
        this._published.push({ transceiver: t, kind: 'video', source: 'screen' });
      }
      this.local.screen = track;
      this.state.participants.get(this.state.self.device).screenTrack = track;
      this.state.local.screenOn = true;
      await this._serial(() => this._negotiate());
    } else if (!on && this.local.screen) {
      this.local.screen.stop();
      this.local.screen = null;
      this.local.screenTransceiver.direction = 'inactive';
      this.state.participants.get(this.state.self.device).screenTrack = null;
      this.state.local.screenOn = false;
      await this._serial(() => this._negotiate());
    }
    this._sendMediaState();
    this._changed();
  }

  /** Leaves the call (`leave`, then `left`), stops media and closes everything. */
  async leave() {
    this._reconnectRun = null;
    if (this.state.phase === 'in-call') {
      const left = this.signaling.next(['left'], 3000).catch(() => null);
      this.signaling.send({ type: 'leave' });
      await left;
    }
    this._ended('leave');
  }

  _ended(reason) {
    if (this.state.phase === 'left') return;
    this.state.phase = 'left';
    this.state.leftReason = reason;
    this._reconnectRun = null;
    this._wake?.();
    this._unwatchNetwork();
    clearTimeout(this._keyTimer);
    clearInterval(this._statsTimer);
    this.monitor?.stop();
    for (const t of [this.local.mic, this.local.camera, this.local.screen]) t?.stop();
    this.pc?.close();
    this.media?.close();
    this.signaling.close();
    this._changed();
  }

  /** True if only loopback candidates appear in `sdp` (test mode self-check). */
  static sdpIsLoopbackOnly(sdp) {
    return sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:')).every(isLoopbackCandidate);
  }
}

/**
 * The RTP header extensions a receive slot negotiates: the ones the SFU reads or writes on a
 * forwarded stream (mid, congestion control, audio level). Chromium offers about a dozen per
 * section by default, a third of a slot offer's size (docs/architecture.md §7.23).
 */
const SLOT_HEADER_EXTENSIONS = new Set([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
]);

/** Stops every header extension of `transceiver` not in `keep` (where the browser can). */
function limitHeaderExtensions(transceiver, keep) {
  if (typeof transceiver.setHeaderExtensionsToNegotiate !== 'function') return;
  const exts = transceiver.getHeaderExtensionsToNegotiate().map((e) => (keep.has(e.uri) ? e : { ...e, direction: 'stopped' }));
  try {
    transceiver.setHeaderExtensionsToNegotiate(exts);
  } catch {
    // A browser that refuses the change offers its defaults: larger, still valid.
  }
}
