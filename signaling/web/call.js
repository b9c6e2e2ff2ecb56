/**
 * One call, from `join` to `leave`: the coordinator of its parts, and the API the page (app.js,
 * `ui/` through app.js's actions) and the browser tests use. `call.state` is what the UI draws;
 * a `change` event follows every update.
 *
 * The parts, one job each (`call/`):
 * - `store.js` (`CallStore`): `state`, the `change` event, warnings and notes;
 * - `session.js` (`SignalingSession`): the socket, join, message dispatch, server errors,
 *   reconnect (`reconnect.js`), leave;
 * - `negotiator.js` (`Negotiator`): the one peer connection to the SFU, local tracks, offers and
 *   answers, remote tracks and subscriptions;
 * - `key-session.js` (`KeySession`): the key manager and the transform worker;
 * - `roster.js` (`Roster`): participants, bundle verification and pins, recording policy,
 *   security code, safety numbers, media states of others, speakers;
 * - `recording-hold.js` (`RecordingHold`): strict recording (senders held until a recorder
 *   receives them);
 * - `stats-report.js` (`StatsReport`): quality panel figures and the `stats` message.
 *
 * Flow: `join` → `joined` (slot, roster, recording policy) → bundles verified and pinned → key
 * manager started (publishers) → the offer (non-trickle, complete) with the published tracks →
 * `answer`. Then roster deltas, membership notices (rekeying), key envelopes/acks/requests,
 * speakers, published tracks (subscriptions) or, in a receive-slot room, `slots` maps (no
 * subscriptions: the offer carries `joined.receive_slots` recvonly sections), SFU renegotiation
 * offers, and every few seconds a `stats` message with the decrypt failures. On `media_reset`
 * (the SFU restarted) a fresh peer connection with the same local tracks and a new offer; keys
 * are untouched. When the socket is lost the call reconnects as the same device (session.js).
 *
 * Remote media is shown as its sender's only by the slot in the SFrame KIDs its frames were
 * opened with (the worker reports it); what the server says (`track_published`, `slots`, msid)
 * is a hint, and each disagreement counts in `state.e2ee.sourceMismatches` (remote-media.js).
 *
 * @module call
 */
import { Moderation } from './moderation.js';
import { Hands } from './hands.js';
import { ReactionBoard } from './reactions.js';
import { isLoopbackCandidate } from './loopback-only.js';
import { CallStore } from './call/store.js';
import { SignalingSession } from './call/session.js';
import { Negotiator } from './call/negotiator.js';
import { KeySession } from './call/key-session.js';
import { Roster } from './call/roster.js';
import { RecordingHold } from './call/recording-hold.js';
import { StatsReport } from './call/stats-report.js';

export { CAMERA_LAYERS, remoteSendingMids, rtcIceServers } from './call/negotiator.js';

/** A call in a room, from `join` to `leave`. */
export class Call extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {string} o.token JWT from the application
   * @param {string} [o.name] display name
   * @param {string} [o.signalingUrl] default: `/v1/rtc` on this origin
   * @param {import('./signaling-client.js').SignalingClient} [o.signalingClient] the client the
   *   first join uses (default: one for `signalingUrl`); a test's stand-in server plugs in here
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
    this.store = new CallStore({ room: o.room, speaker: o.speaker, changed: () => this.dispatchEvent(new Event('change')) });
    this.session = new SignalingSession(this, o.signalingClient);
    this.negotiator = new Negotiator(this, o.localStream);
    this.keySession = new KeySession(this);
    this.roster = new Roster(this);
    this.hold = new RecordingHold({ store: this.store, media: () => this.keySession.media });
    this.statsReport = new StatsReport({ store: this.store, remote: () => this.negotiator.remote, send: (m) => this.session.send(m) });
    /** Moderator controls (moderation.js); `state.moderation` is what the UI draws of them. */
    this.moderation = new Moderation({ send: (m) => this.session.send(m), changed: () => this.store.changed() });
    this.state.moderation = this.moderation.state;
    /** Raised hands (hands.js) and the reactions on screen (reactions.js). */
    this.hands = new Hands({
      send: (m) => this.session.send(m),
      changed: () => this.store.changed(),
      note: (text) => this.store.note('hand-lowered', text),
      name: (d) => this.state.participants.get(d)?.name,
    });
    this.state.hands = this.hands.state;
    this.reactions = new ReactionBoard();
    this.state.reactions = this.reactions;
  }

  /** What the UI draws (call/store.js). */
  get state() {
    return this.store.state;
  }

  /** The current session's signaling client (a reconnect makes a new one). */
  get signaling() {
    return this.session.signaling;
  }

  /** The current media session's peer connection to the SFU (null between sessions). */
  get pc() {
    return this.negotiator.pc;
  }

  /** The local tracks: `{mic, camera, screen}` (null where there is none). */
  get local() {
    return this.negotiator.local;
  }

  /** The remote receivers and whose KIDs open them (remote-media.js `RemoteMedia`). */
  get remote() {
    return this.negotiator.remote;
  }

  /** The current session's key manager (keys.js `KeyManager`; null between sessions). */
  get keys() {
    return this.keySession.keys;
  }

  /** The current session's transform worker (media-crypto.js `MediaCrypto`; null between sessions). */
  get media() {
    return this.keySession.media;
  }

  /** The current session's chat room (chat.js `ChatRoom`; null before the first `joined`). */
  get chat() {
    return this.session.chat;
  }

  /** Joins the room and starts media. Rejects with the server's error (code + message). */
  join() {
    return this.session.join();
  }

  /** Leaves the call (`leave`, then `left`), stops media and closes everything. */
  leave() {
    return this.session.leave();
  }

  /** After the reconnect gave up (`state.connection.status` `failed`): try again. */
  rejoin() {
    this.session.rejoin();
  }

  /**
   * Test seam: the reconnect backoff's limits (`{firstMs, maxMs, giveUpMs}`, reconnect.js
   * `BACKOFF`), e.g. a give-up time of seconds instead of two minutes.
   */
  setBackoffLimits(limits) {
    this.session.setBackoffLimits(limits);
  }

  /** A warning banner (kind, text); the same one twice shows once. */
  warn(kind, text) {
    this.store.warn(kind, text);
  }

  /** The sources this device sends (`microphone`, `camera`, `screen`), in section order. */
  publishedSources() {
    return this.negotiator.published.map((t) => t.source);
  }

  /** The RTCRtpSender of `source` (`microphone`, `camera`, `screen`), or null. */
  senderOf(source) {
    return this.negotiator.published.find((t) => t.source === source)?.transceiver.sender ?? null;
  }

  /** The receive slots' kinds in section order (`joined.receive_slots`; null in a per-track room). */
  receiveSlotKinds() {
    return this.negotiator.receiveSlots;
  }

  /** The SDP this device last sent or answered with (loopback candidates only in test mode). */
  localSdp() {
    return this.negotiator.localSdp();
  }

  /** The safety number (60 digits) and emoji sequence with `device` (docs/e2ee.md §4.1); computed on demand. */
  verificationCodesWith(device) {
    return this.roster.verificationCodesWith(device);
  }

  /** Marks `device`'s current identity key as verified (persisted) or not. */
  setVerified(device, verified) {
    return this.roster.setVerified(device, verified);
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

  /** The UI reports tile sizes (device -> {width, height}); hidden tiles are 0×0. */
  setVisibleSizes(sizes) {
    this.negotiator.setVisibleSizes(sizes);
  }

  /** Pins a participant's tile (null to unpin). */
  pin(device) {
    this.state.pinned = this.state.pinned === device ? null : device;
    this.negotiator.subscribe();
    this.store.changed();
  }

  /** A moderator action (`moderate`, docs/protocol.md §10); the service refuses it from anyone else. */
  moderate(action, device) {
    return this.moderation.act(action, device);
  }

  /** Mutes or unmutes the microphone (the track keeps sending encrypted silence). */
  setMic(on) {
    this.negotiator.setMic(on);
    this.session.sendMediaState();
    this.store.changed();
  }

  /** Turns the camera picture on or off. */
  setCamera(on) {
    this.negotiator.setCamera(on);
    this.session.sendMediaState();
    this.store.changed();
  }

  /**
   * Switches the microphone (`kind` 'audio') or camera ('video') to device `id` during the call:
   * a new track on the same sender (`replaceTrack`: no renegotiation, the transform and the KID
   * stay), muted or off as the old one was. Rejects (the old track stays) when the device
   * cannot be opened, or when the call has no sender of that kind (it joined without one).
   */
  async useDevice(kind, id) {
    await this.negotiator.useDevice(kind, id);
    this.store.changed();
  }

  /** Plays remote audio through output device `id` (the view calls `setSinkId`). */
  setSpeaker(id) {
    this.state.speaker = id || null;
    this.store.changed();
  }

  /** Starts or stops sharing the screen (KID stream 2; asked for with `publish`, the SFU offers). */
  async setScreen(on) {
    if (!(await this.negotiator.setScreen(on))) return;
    this.session.sendMediaState();
    this.store.changed();
  }

  /** True if only loopback candidates appear in `sdp` (test mode self-check). */
  static sdpIsLoopbackOnly(sdp) {
    return sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:')).every(isLoopbackCandidate);
  }
}
