/**
 * The one RTCPeerConnection to the SFU and everything negotiated on it (docs/protocol.md §3,
 * §6; the web README's "How a call runs through the SFU"): the local tracks and their sending
 * transceivers (simulcast camera, microphone, screen share), receive-only or receive-slot
 * sections, the complete non-trickle offer and its answer, the SFU's renegotiation offers,
 * remote tracks (shown by the KID that opens them, remote-media.js) and the `subscribe` set.
 * The only owner of negotiation: every offer or answer goes through here, in the session's
 * message order.
 *
 * @module call/negotiator
 */
import { Stream } from '../e2ee/kid.mjs';
import { openLocalMedia } from '../local-media.js';
import { openTrack } from '../devices.js';
import { gatheringComplete, loopbackOnlySdp, testModeRtcConfig } from '../loopback-only.js';
import { RemoteMedia, msidTrackOfMid, receiveSlotSections } from '../remote-media.js';
import { screenKey } from '../tile-order.js';

/** The size a screen share is subscribed at before the page has drawn it (a stage's). */
const SCREEN_UNDRAWN = { width: 1280, height: 720 };

/** Simulcast encodings of the camera (docs/architecture.md §2.1: VP8, 3 layers). */
export const CAMERA_LAYERS = [
  { rid: 'low', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'medium', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'high', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

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

/** The mids of the `kind` media sections in which `sdp`'s author only receives (`recvonly`). */
export function remoteReceiveOnlyMids(sdp, kind) {
  const mids = new Set();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    if (!section.startsWith(kind)) continue;
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    if (mid !== undefined && /^a=recvonly\s*$/m.test(section)) mids.add(mid);
  }
  return mids;
}

/** `joined.ice_servers` (docs/protocol.md) as `RTCIceServer`s. */
export function rtcIceServers(list) {
  return (Array.isArray(list) ? list : [])
    .filter((x) => x && Array.isArray(x.urls) && x.urls.length && typeof x.username === 'string' && typeof x.credential === 'string')
    .map((x) => ({ urls: x.urls, username: x.username, credential: x.credential }));
}

/** The peer connection to the SFU, the local tracks it sends and the remote ones it receives. */
export class Negotiator {
  /**
   * @param {import('../call.js').Call} call the coordinator (its store, session, key session, hold, roster, stats)
   * @param {MediaStream} [localStream] the camera and microphone the pre-join screen opened
   */
  constructor(call, localStream) {
    this.call = call;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    this.local = { mic: null, camera: null, screen: null, screenSender: null };
    /** Remote receivers, what the server says they carry, and whose KIDs they open. */
    this.remote = new RemoteMedia();
    /** `joined.receive_slots` as transceiver kinds (null: a per-track room). */
    this.receiveSlots = null;
    /** The sending transceivers: `[{transceiver, kind, source, layers?}]`. */
    this.published = [];
    this.iceServers = [];
    this.mediaReady = false;
    this.localStream = localStream ?? null;
    /** The UI's tile sizes (device or screen key -> {width, height}). */
    this.visibleSizes = null;
    this.lastSubscription = null;
    this.subTimer = null;
    this.resubscribeTimer = null;
    this.decrypting = new WeakMap();
    /** This device's own offer waits for the SFU's answer (an SFU offer arriving now crossed it). */
    this.offering = false;
    /** The id of the last `publish` / `unpublish` this page sent. */
    this.requestId = 0;
    /** `{id, track}`: the screen track asked for with `publish`, until an SFU offer places it. */
    this.screenRequest = null;
  }

  get state() {
    return this.call.state;
  }

  /** The worker of the current key session (every transceiver's transforms). */
  get media() {
    return this.call.keySession.media;
  }

  /** `joined`: the TURN servers and the receive slots of this session. */
  onJoined(j) {
    this.iceServers = j.ice_servers ?? [];
    this.receiveSlots = receiveSlotSections(j.receive_slots);
    this.remote.slotRoom = this.receiveSlots !== null;
  }

  _rtcConfig() {
    const extra = { ...this.media.peerConnectionConfig() };
    // `relayOnly`: only relay candidates (through TURN), to test the path UDP-blocking networks
    // take. Without it, host candidates reach the ICE-lite SFU directly when UDP is open.
    if (this.call.options.relayOnly) extra.iceTransportPolicy = 'relay';
    // The TURN servers and credentials of `joined.ice_servers` (none configured: an explicitly
    // empty list, so no stack falls back to a public STUN server).
    const iceServers = rtcIceServers(this.iceServers);
    return this.call.options.testMode ? testModeRtcConfig(extra, iceServers) : { ...extra, iceServers };
  }

  /** A media session: a new peer connection, the local tracks (opened once), the offer, the answer. */
  async start() {
    const s = this.state;
    const hold = this.call.hold;
    this.pc = new RTCPeerConnection(this._rtcConfig());
    this.pc.addEventListener('track', (e) => this._onTrack(e));
    const self = s.self;
    const tracks = [];
    hold.newMedia();
    if (self.canPublish) {
      // After a media reset the local tracks are reused as they are (muted stays muted).
      const stream = this.localStream ?? (await openLocalMedia((kind, text) => this.call.store.note(kind, text)));
      this.localStream = stream;
      this.local.mic = stream.getAudioTracks()[0] ?? null;
      this.local.camera = stream.getVideoTracks()[0] ?? null;
      if (this.local.mic) {
        const t = this.pc.addTransceiver(this.local.mic, { direction: 'sendonly', streams: [stream] });
        hold.attachSender(t.sender, { id: 'send-mic', kind: 'audio', stream: Stream.AUDIO });
        this._decryptIncoming(t.receiver, 'recv-mic', 'audio');
        preferCodec(t, 'audio', /opus/i);
        tracks.push({ transceiver: t, kind: 'audio', source: 'microphone' });
      }
      if (this.local.camera) {
        const t = this.pc.addTransceiver(this.local.camera, { direction: 'sendonly', streams: [stream], sendEncodings: CAMERA_LAYERS });
        hold.attachSender(t.sender, { id: 'send-camera', kind: 'video', stream: Stream.CAMERA });
        this._decryptIncoming(t.receiver, 'recv-camera', 'video');
        preferCodec(t, 'video', /vp8/i);
        tracks.push({ transceiver: t, kind: 'video', source: 'camera', layers: CAMERA_LAYERS.map((l) => l.rid) });
      }
      // A reused track keeps its mute (`enabled`) through a media reset or a rejoin.
      s.local.micOn = !!this.local.mic && this.local.mic.enabled;
      s.local.cameraOn = !!this.local.camera && this.local.camera.enabled;
      s.local.hasMic = !!this.local.mic;
      s.local.hasCamera = !!this.local.camera;
      const me = s.participants.get(self.device);
      me.videoTrack = this.local.camera;
    }
    if (this.receiveSlots) {
      // A receive-slot room (docs/protocol.md §6 `slots`): every slot's recvonly section is in
      // the first offer, audio first, then video and screen; the SFU maps sources onto them.
      this.receiveSlots.forEach((kind, i) => {
        const t = this.pc.addTransceiver(kind, { direction: 'recvonly' });
        this._decryptIncoming(t.receiver, `recv-slot-${i}`, kind);
        // Only the codecs the SFU forwards (Opus; VP8 and its RTX), as the native client
        // offers: with every default codec the default slot counts (31 sections) make an offer
        // over the 60 KiB SDP cap (docs/architecture.md §7.23).
        if (kind === 'audio') preferCodec(t, 'audio', /opus/i, null);
        else preferCodec(t, 'video', /vp8/i, /rtx/i);
        limitHeaderExtensions(t, SLOT_HEADER_EXTENSIONS);
      });
    } else if (!tracks.length) {
      // Receive-only sections (docs/protocol.md `offer`): one for audio, one for video.
      const audio = this.pc.addTransceiver('audio', { direction: 'recvonly' });
      const video = this.pc.addTransceiver('video', { direction: 'recvonly' });
      this._decryptIncoming(audio.receiver, 'recv-audio', 'audio');
      this._decryptIncoming(video.receiver, 'recv-video', 'video');
    }
    this.published = tracks;
    await this.negotiate();
    // The media node knows this device from its answer on: subscriptions wait for it.
    this.mediaReady = true;
    this.call.statsReport.start(this.pc);
    this.subscribe();
    this.call.store.changed();
  }

  /**
   * `media_reset`: the SFU lost this device's media session. Closes the peer connection, forgets
   * the remote tracks and starts a fresh session (new peer connection, same local tracks, a new
   * offer). A screen share ends; the sender keys and the key exchange are untouched.
   */
  async restart(reason) {
    const s = this.state;
    if (!this.pc || s.phase !== 'in-call') return;
    console.warn(`media_reset: ${reason}`);
    s.connection.mediaResets += 1;
    this.call.store.note('media-reset', 'The media server restarted: reconnecting audio and video…');
    this.call.statsReport.stop();
    this.pc.close();
    this._endScreen();
    this.remote.reset();
    this.lastSubscription = null;
    this.placeAll();
    await this.start();
    // Back: the note goes, and the others hear that the screen share ended.
    this.call.store.dropNotes('media-reset');
    this.call.session.sendMediaState();
    this.call.store.changed();
  }

  /** The screen share ends with its media session (no renegotiation: the connection is gone). */
  _endScreen() {
    this.local.screen?.stop();
    this.local.screen = null;
    this.screenRequest = null;
    this.local.screenTransceiver = null;
    this.state.local.screenOn = false;
  }

  /**
   * The session ended (reconnecting): the subscription timers, the peer connection, the screen
   * share and the remote tracks go; the local camera and microphone stay for the next one.
   */
  drop() {
    clearTimeout(this.subTimer);
    clearTimeout(this.resubscribeTimer);
    this.mediaReady = false;
    this.pc?.close();
    this.pc = null;
    this._endScreen();
    this.remote.reset();
    this.lastSubscription = null;
  }

  /** Closes the peer connection (the call ended or its join failed). */
  close() {
    this.pc?.close();
  }

  /** Stops the camera, microphone and screen tracks (the call ended or its join failed). */
  stopLocalTracks() {
    for (const t of [this.local.mic, this.local.camera, this.local.screen]) t?.stop();
  }

  /** The SDP this device sends: its local description (loopback candidates only in test mode). */
  localSdp() {
    const sdp = this.pc.localDescription.sdp;
    return this.call.options.testMode ? loopbackOnlySdp(sdp) : sdp;
  }

  _remoteSdp(sdp) {
    return this.call.options.testMode ? loopbackOnlySdp(sdp) : sdp;
  }

  /** An offer with the sending sections' `tracks`, and the SFU's answer to it. */
  async negotiate() {
    const sig = this.call.session.signaling;
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await gatheringComplete(this.pc);
    const tracks = this.published
      .filter((t) => t.transceiver.mid !== null && t.transceiver.direction !== 'inactive')
      .map((t) => ({ mid: t.transceiver.mid, kind: t.kind, source: t.source, ...(t.layers ? { layers: t.layers } : {}) }));
    const answer = sig.next(['answer'], 15_000);
    this.offering = true;
    let m;
    try {
      sig.send({ type: 'offer', sdp: this.localSdp(), ...(this.state.self.canPublish ? { tracks } : {}) });
      m = await answer;
    } finally {
      this.offering = false;
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp: this._remoteSdp(m.sdp) });
  }

  /** An SFU-started renegotiation (`offer`): the answer, with receiving directions widened. */
  async onRemoteOffer(m) {
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
    await this._placeScreen(sdp);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await gatheringComplete(this.pc);
    this.call.session.signaling.send({ type: 'answer', sdp: this.localSdp() });
  }

  _onTrack(e) {
    // Transceivers this device created already decrypt (see _decryptIncoming); a section the
    // SFU added gets its transform here, once (a renegotiation fires `track` again).
    const id = this._decryptIncoming(e.receiver, `recv-${e.transceiver.mid ?? this.remote.receivers.size}`, e.track.kind);
    // Shown in a tile once the worker says whose key opens its frames (`attribute`).
    this.remote.addReceiver({
      id,
      mid: e.transceiver.mid,
      track: e.track,
      streamOwner: e.streams?.[0]?.id ?? null,
      trackKey: msidTrackOfMid(this.pc.remoteDescription?.sdp, e.transceiver.mid),
    });
    e.track.addEventListener('ended', () => {
      this.remote.removeReceiver(id);
      this.placeAll();
    });
    this.placeAll();
  }

  /**
   * Puts the decrypting transform on `receiver` unless it has one; returns its transform id.
   * Called when a transceiver is created as well as on `track`: the SFU may forward media on a
   * section this device opened for sending (it turns it `sendrecv`), and Chromium (156) never
   * runs frames through a receiver transform set after a negotiation in which that receiver
   * did not receive. So every transceiver decrypts from its creation.
   */
  _decryptIncoming(receiver, id, kind) {
    const have = this.decrypting.get(receiver);
    if (have) return have;
    this.decrypting.set(receiver, id);
    this.media.attachReceiver(receiver, { id, kind });
    return id;
  }

  /** Every remote track into its KID sender's tile, and every audio receiver into a sink. */
  placeAll() {
    const s = this.state;
    this.remote.place(s.participants);
    s.remoteAudio = this.remote.audioSinks();
    s.e2ee.sourceMismatches = this.remote.sourceMismatches;
    this.call.store.changed();
  }

  /** The worker: receiver `id` opens frames with KID slot `slot`'s key now. */
  attribute(id, slot) {
    if (this.remote.attribute(id, slot, (x) => this.call.roster.deviceOfSlot(x))) this.placeAll();
  }

  /** The worker's per-receiver counters: failures for the quality panel, the slot each opens with. */
  onReceiverStats(transforms) {
    let moved = false;
    for (const t of transforms) {
      const r = this.remote.receivers.get(t.id);
      if (!r) continue;
      r.failures = t.failures;
      moved = this.remote.attribute(t.id, t.lastSlot, (slot) => this.call.roster.deviceOfSlot(slot)) || moved;
    }
    if (moved) this.placeAll();
  }

  /** `track_published` (this device's own included: strict recording maps it to its sender). */
  onTrackPublished(track) {
    if (track?.publisher === this.state.self?.device) this.call.hold.ownTrackPublished(track);
    this.remote.announce(track);
    if (this.state.e2ee.sourceMismatches !== this.remote.sourceMismatches) {
      this.state.e2ee.sourceMismatches = this.remote.sourceMismatches;
      this.call.store.changed();
    }
    this.subscribe();
  }

  /** `track_unpublished`: a stopped screen share leaves the stage now, not with its last frame. */
  onTrackUnpublished(track) {
    this.remote.unannounce(track);
    this.placeAll();
    this.subscribe();
  }

  /** `slots` (a receive-slot room): the newer map places the tracks again. */
  onSlots(m) {
    if (this.remote.applySlots(m)) this.placeAll();
  }

  /** Sends the wanted tracks: everything visible, with the tile sizes the UI reported. */
  subscribe() {
    const s = this.state;
    if (!this.mediaReady || s.phase === 'left' || !s.self?.canSubscribe) return;
    // A receive-slot room subscribes nobody per track: the SFU fills the slots.
    if (this.receiveSlots) return;
    const visible = this.visibleSizes ?? new Map();
    const subscriptions = [];
    for (const t of this.remote.subscribable(s.self.device)) {
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
      if (s.pinned === shownAs || t.source === 'screen') sub.layer = 'high';
      subscriptions.push(sub);
    }
    // The UI reports tile sizes on every redraw: send only a changed set (each `subscribe`
    // replaces the whole set on the SFU).
    const msg = { type: 'subscribe', subscriptions: subscriptions.slice(0, 512) };
    const key = JSON.stringify(msg.subscriptions);
    if (key === this.lastSubscription) return;
    this.lastSubscription = key;
    this.call.session.signaling.send(msg);
  }

  /** A set that crossed a departure was refused: send it again shortly (without the departed). */
  resubscribeSoon() {
    this.lastSubscription = null;
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = setTimeout(() => this.subscribe(), 250);
  }

  /** The UI reports tile sizes (device -> {width, height}); hidden tiles are 0×0. */
  setVisibleSizes(sizes) {
    this.visibleSizes = sizes;
    clearTimeout(this.subTimer);
    this.subTimer = setTimeout(() => this.subscribe(), 300);
  }

  /** Mutes or unmutes the microphone (the track keeps sending encrypted silence). */
  setMic(on) {
    if (this.local.mic) this.local.mic.enabled = on;
    this.state.local.micOn = !!this.local.mic && on;
  }

  /** Turns the camera picture on or off. */
  setCamera(on) {
    if (this.local.camera) this.local.camera.enabled = on;
    this.state.local.cameraOn = !!this.local.camera && on;
  }

  /**
   * Switches the microphone (`kind` 'audio') or camera ('video') to device `id`: a new track on
   * the same sender (`replaceTrack`: no renegotiation, the transform and the KID stay), muted or
   * off as the old one was. Rejects (the old track stays) when the device cannot be opened, or
   * when the call has no sender of that kind (it joined without one).
   */
  async useDevice(kind, id) {
    const old = kind === 'audio' ? this.local.mic : this.local.camera;
    if (!old) throw new DOMException(`this call sends no ${kind === 'audio' ? 'microphone' : 'camera'}`, 'InvalidStateError');
    const track = await openTrack(kind, id);
    track.enabled = old.enabled;
    const source = kind === 'audio' ? 'microphone' : 'camera';
    const sending = this.pc && this.published.find((t) => t.source === source);
    try {
      if (sending) await sending.transceiver.sender.replaceTrack(track);
    } catch (err) {
      track.stop();
      throw err;
    }
    this.localStream.removeTrack(old);
    this.localStream.addTrack(track);
    old.stop();
    if (kind === 'audio') this.local.mic = track;
    else {
      this.local.camera = track;
      const me = this.state.participants.get(this.state.self.device);
      if (me) me.videoTrack = track;
    }
  }

  /**
   * Starts or stops sharing the screen (KID stream 2). After the first answer only the SFU
   * offers (docs/architecture.md §7.53): starting sends `publish` and the SFU's next `offer`
   * carries a section it receives on, which `onRemoteOffer` gives the screen track; stopping
   * takes the track off, stops it and sends `unpublish`, and the SFU's offer turns the section
   * `inactive`. This page never offers after its first answer. False when there is nothing to
   * do (no media session, or a viewer).
   */
  async setScreen(on) {
    const s = this.state;
    if (!this.pc || !s.self.canPublish) return false;
    const sig = this.call.session.signaling;
    if (on && !this.local.screen) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = stream.getVideoTracks()[0];
      track.addEventListener('ended', () => this.call.setScreen(false));
      this.local.screen = track;
      s.participants.get(s.self.device).screenTrack = track;
      s.local.screenOn = true;
      this.requestId += 1;
      this.screenRequest = { id: this.requestId, track };
      await this.call.session.serial(() => {
        sig.send({ type: 'publish', id: this.requestId, kind: 'video', source: 'screen' });
      });
    } else if (!on && this.local.screen) {
      const track = this.local.screen;
      this.local.screen = null;
      this.screenRequest = null;
      s.participants.get(s.self.device).screenTrack = null;
      s.local.screenOn = false;
      await this.local.screenTransceiver?.sender.replaceTrack(null);
      track.stop();
      this.requestId += 1;
      const id = this.requestId;
      await this.call.session.serial(() => {
        sig.send({ type: 'unpublish', id, source: 'screen' });
      });
    }
    return true;
  }

  /**
   * After `setRemoteDescription` of an SFU offer: the screen track asked for with `publish`
   * goes on the section the SFU receives on (a new video section it offers `recvonly`, with
   * nothing sent on it yet; each share gets one), sending, with the sending transform (KID
   * stream 2) and VP8 first.
   */
  async _placeScreen(sdp) {
    const request = this.screenRequest;
    if (!request || this.local.screen !== request.track) return;
    const receiving = remoteReceiveOnlyMids(sdp, 'video');
    const t = this.pc.getTransceivers().find((x) => x.mid !== null && receiving.has(x.mid) && !x.sender.track && !this.published.some((p) => p.transceiver === x));
    if (!t) return;
    this.screenRequest = null;
    t.direction = 'sendonly';
    this.call.hold.attachSender(t.sender, { id: 'send-screen', kind: 'video', stream: Stream.SCREEN_VIDEO });
    preferCodec(t, 'video', /vp8/i);
    await t.sender.replaceTrack(request.track);
    this.local.screenTransceiver = t;
    // The stopped share's section stays `inactive`: this one replaces it.
    this.published = [...this.published.filter((p) => p.source !== 'screen'), { transceiver: t, kind: 'video', source: 'screen' }];
    this.call.store.changed();
  }

  /** An `error` naming this page's `publish`: the screen share did not start. */
  onRequestRefused(m) {
    if (!this.screenRequest || m.request_id !== this.screenRequest.id) return;
    const track = this.screenRequest.track;
    this.screenRequest = null;
    if (this.local.screen === track) {
      track.stop();
      this.local.screen = null;
      this.state.local.screenOn = false;
      const me = this.state.participants.get(this.state.self.device);
      if (me) me.screenTrack = null;
      this.call.store.changed();
    }
  }
}

/**
 * Puts the codecs matching `pattern` first and keeps only those and the ones matching
 * `extras` (default: RTX, RED, FEC, comfort noise, DTMF; null: none).
 */
function preferCodec(transceiver, kind, pattern, extras = /rtx|red|ulpfec|cn|telephone-event/i) {
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
