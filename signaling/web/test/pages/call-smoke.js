/**
 * The Call's media path before an SFU exists: the real Call, SignalingClient message handling,
 * key manager, worker and peer connection, with the WebSocket replaced by an in-page stand-in
 * server that answers `join` and answers the offer with a receive-only peer connection (the
 * stand-in for the SFU). It shows the publishing side works: getUserMedia, simulcast sections,
 * VP8/Opus, sender transforms encrypting with the generation-0 key, loopback-only SDP, mute,
 * screen share renegotiation, `stats` messages and `leave`.
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

/** Starts a screen share (renegotiates). */
export async function share() {
  await call.setScreen(true);
  return { screenOn: call.state.local.screenOn, lastTracks: signaling.lastOffer.tracks };
}

/** Leaves. */
export async function leave() {
  await call.leave();
  return { phase: call.state.phase, leaveSent: signaling.sentLog.some((m) => m.type === 'leave') };
}
