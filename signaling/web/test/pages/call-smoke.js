/**
 * The Call's media path before an SFU exists: the real Call, SignalingClient message handling,
 * key manager, worker and peer connection, with the WebSocket replaced by an in-page stand-in
 * server that answers `join` and answers the offer with a receive-only peer connection (the
 * stand-in for the SFU). It shows the publishing side works: getUserMedia, simulcast sections,
 * VP8/Opus, sender transforms encrypting with the generation-0 key, loopback-only SDP, mute,
 * a screen share asked for with `publish` and placed on the stand-in SFU's offered section (the
 * page never offers again), `stats` messages and `leave`.
 */
import { Call } from '../../call.js';
import { createBundle } from '../../e2ee/identity.mjs';
import { IdentityStore } from '../../identity-store.js';
import { gatheringComplete, loopbackOnlySdp, testModeRtcConfig } from '../../loopback-only.js';
import { SignalingClient } from '../../signaling-client.js';
import { mountCall } from '../../app.js';

/** A SignalingClient whose socket is an in-page stand-in server. */
class StandInSignaling extends SignalingClient {
  constructor() {
    super('ws://unused');
    this.sentLog = [];
    this.sink = null;
  }
  async connect() {}
  close() {}
  _deliver(msg) {
    setTimeout(() => this._onMessage(JSON.stringify(msg)), 0);
  }
  send(msg) {
    this.sentLog.push(msg);
    this.sent += 1;
    this._serve(msg).catch((e) => this._deliver({ type: 'error', code: 'internal', message: String(e) }));
    return true;
  }
  /** An offer of the stand-in SFU's own; resolves when the page's answer is applied. */
  async _offer() {
    const answered = new Promise((resolve) => {
      this.answered = resolve;
    });
    await this.sink.setLocalDescription(await this.sink.createOffer());
    await gatheringComplete(this.sink);
    this._deliver({ type: 'offer', sdp: loopbackOnlySdp(this.sink.localDescription.sdp) });
    this.lastExchange = answered;
  }
  async _serve(msg) {
    if (msg.type === 'join') {
      this._deliver({
        type: 'joined', v: 1, room: msg.room, call: 'c-smoke', kind: 'meeting', device: msg.device.device, slot: 1,
        role: 'caller', can_publish: true, can_subscribe: true, media: true,
        roster: { version: 1, devices: [
          { device: msg.device.device, identity: 'me', name: msg.name, role: 'caller', slot: 1, can_publish: true, bundle: msg.device },
          { device: this.peer.bundle.device, identity: 'peer', name: 'Peer', role: 'caller', slot: 2, can_publish: true, bundle: this.peer.bundle },
        ] },
        tracks: [],
      });
    } else if (msg.type === 'offer') {
      this.offers = (this.offers ?? 0) + 1;
      this.lastOffer = msg;
      if (!this.sink) this.sink = new RTCPeerConnection(testModeRtcConfig());
      await this.sink.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
      await this.sink.setLocalDescription(await this.sink.createAnswer());
      await gatheringComplete(this.sink);
      this._deliver({ type: 'answer', sdp: loopbackOnlySdp(this.sink.localDescription.sdp) });
    } else if (msg.type === 'publish') {
      // As the SFU does (docs/architecture.md §7.53): a section it receives the screen on, and
      // an offer of its own; the page answers with the screen track on it.
      this.publishes = (this.publishes ?? 0) + 1;
      if (!this.screen) this.screen = this.sink.addTransceiver('video', { direction: 'recvonly' });
      else this.screen.direction = 'recvonly';
      await this._offer();
    } else if (msg.type === 'unpublish') {
      this.screen.direction = 'inactive';
      await this._offer();
    } else if (msg.type === 'answer') {
      await this.sink.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      this.answered?.();
    } else if (msg.type === 'leave') {
      this._deliver({ type: 'left', reason: 'leave' });
    }
  }
}

let call;
let signaling;

/** Joins with the stand-in server; resolves with what was offered. */
export async function start() {
  const store = await IdentityStore.open();
  const { generateDeviceIdentity } = await import('../../e2ee/identity.mjs');
  const peer = await generateDeviceIdentity({ deviceId: 'dev-peer' });
  signaling = new StandInSignaling();
  signaling.peer = { identity: peer, bundle: await createBundle(peer) };
  call = new Call({ room: 'smoke', token: 'unused', name: 'Smoke', identityStore: store, testMode: true, signalingClient: signaling });
  window.__call = call;
  await call.join();
  mountCall(document.getElementById('app'), call);
  const offer = signaling.lastOffer;
  return {
    phase: call.state.phase,
    tracks: offer.tracks,
    candidates: offer.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:')).map((l) => l.split(' ')[4]),
    rids: offer.sdp.split('\r\n').filter((l) => l.startsWith('a=rid:')).map((l) => l.split(' ')[0].slice(6)),
    videoCodecs: offer.sdp.split('\r\n').filter((l) => l.startsWith('a=rtpmap:')).map((l) => l.split(' ')[1].split('/')[0]),
    envelopesTo: signaling.sentLog.filter((m) => m.type === 'key_envelope').map((m) => `${m.envelope.recipient}:g${m.envelope.generation}`),
  };
}

/** Counters after some sending. */
export async function snapshot() {
  const worker = await call.media.stats();
  let packetsSent = 0;
  (await call.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp') packetsSent += r.packetsSent ?? 0;
  });
  return {
    encrypted: worker.totals.encrypted,
    dropped: worker.totals.dropped,
    packetsSent,
    connection: call.pc.connectionState,
    stats: signaling.sentLog.filter((m) => m.type === 'stats'),
    micEnabled: call.local.mic?.enabled,
    offers: signaling.offers,
    generation: call.state.e2ee.generation,
  };
}

/** Mutes through the UI state path. */
export function mute() {
  call.setMic(false);
  return call.local.mic.enabled;
}

/** Packets the stand-in SFU received on its screen section so far. */
async function screenPacketsReceived() {
  let n = 0;
  (await signaling.sink.getStats(signaling.screen.receiver.track)).forEach((r) => {
    if (r.type === 'inbound-rtp') n += r.packetsReceived ?? 0;
  });
  return n;
}

/** Waits until `condition()` holds (every 100 ms, up to 10 s). */
async function until(condition) {
  for (let i = 0; i < 100 && !(await condition()); i++) await new Promise((r) => setTimeout(r, 100));
}

/**
 * Starts a screen share: `publish`, the stand-in SFU's offer, the page's answer; resolves once
 * screen packets reach the stand-in SFU.
 */
export async function share() {
  const before = signaling.lastExchange;
  const packetsBefore = signaling.screen ? await screenPacketsReceived() : 0;
  await call.setScreen(true);
  await until(() => signaling.lastExchange !== before);
  await signaling.lastExchange;
  await until(async () => (await screenPacketsReceived()) > packetsBefore + 10);
  return {
    screenOn: call.state.local.screenOn,
    publishes: signaling.publishes,
    offers: signaling.offers,
    screenDirection: signaling.screen.currentDirection,
    screenPackets: (await screenPacketsReceived()) - packetsBefore,
    codec: /a=rtpmap:\d+ (\S+)\//.exec(signaling.sink.currentRemoteDescription.sdp.split(/\r?\nm=/).find((m) => m.includes(`a=mid:${signaling.screen.mid}`)) ?? '')?.[1] ?? null,
  };
}

/** Stops the screen share: `unpublish`, the stand-in SFU's offer turns the section inactive. */
export async function unshare() {
  const before = signaling.lastExchange;
  await call.setScreen(false);
  await until(() => signaling.lastExchange !== before);
  await signaling.lastExchange;
  return { screenOn: call.state.local.screenOn, offers: signaling.offers, screenDirection: signaling.screen.currentDirection, unpublishes: signaling.sentLog.filter((m) => m.type === 'unpublish').length };
}

/** Leaves. */
export async function leave() {
  await call.leave();
  return { phase: call.state.phase, leaveSent: signaling.sentLog.some((m) => m.type === 'leave') };
}
