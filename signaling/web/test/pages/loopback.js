/**
 * Test page: two peer connections in one page, each with its own transform worker (two
 * devices), sending the fake camera and microphone through the real E2EE worker. The node test
 * drives it through `window.loopback`. Loopback only: empty ICE server list, only 127.0.0.1
 * candidates in the SDP exchanged.
 */
import { MediaCrypto } from '../../media-crypto.js';
import { gatheringComplete, loopbackOnlySdp, testModeRtcConfig } from '../../loopback-only.js';

const SENDER_SLOT = 7;
let state = null;

function randomKey() {
  return crypto.getRandomValues(new Uint8Array(32));
}

/**
 * Starts a call from A to B. `receiver`: 'decrypt' (B decrypts with its key store), 'none'
 * (B has no transform: it hands the encrypted frames straight to its decoders).
 * `receiverKey`: 'right' | 'wrong' | 'none'.
 */
export async function start({ receiver = 'decrypt', receiverKey = 'right', mode } = {}) {
  const baseKey = randomKey();
  const cryptoA = new MediaCrypto({ mode });
  const cryptoB = receiver === 'decrypt' ? new MediaCrypto({ mode }) : null;
  const config = testModeRtcConfig(cryptoA.peerConnectionConfig());
  const pcA = new RTCPeerConnection(config);
  const pcB = new RTCPeerConnection(testModeRtcConfig(cryptoB?.peerConnectionConfig() ?? {}));
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360, frameRate: 30 } });
  for (const track of media.getTracks()) {
    const t = pcA.addTransceiver(track, { direction: 'sendonly' });
    cryptoA.attachSender(t.sender, { id: `send-${track.kind}`, kind: track.kind, stream: track.kind === 'audio' ? 0 : 1 });
    if (track.kind === 'video') {
      const vp8 = RTCRtpSender.getCapabilities('video').codecs.filter((c) => /vp8/i.test(c.mimeType));
      t.setCodecPreferences(vp8);
    }
  }
  cryptoA.setSenderKey({ slot: SENDER_SLOT, generation: 0, step: 0, suite: 5, baseKey });
  const remote = {};
  pcB.addEventListener('track', (e) => {
    if (cryptoB) cryptoB.attachReceiver(e.receiver, { id: `recv-${e.track.kind}`, kind: e.track.kind });
    remote[e.track.kind] = e.track;
  });
  if (cryptoB && receiverKey !== 'none') {
    cryptoB.addReceiverKey({ slot: SENDER_SLOT, generation: 0, step: 0, suite: 5, baseKey: receiverKey === 'right' ? baseKey : randomKey() });
  }
  await pcA.setLocalDescription(await pcA.createOffer());
  await gatheringComplete(pcA);
  await pcB.setRemoteDescription({ type: 'offer', sdp: loopbackOnlySdp(pcA.localDescription.sdp) });
  await pcB.setLocalDescription(await pcB.createAnswer());
  await gatheringComplete(pcB);
  await pcA.setRemoteDescription({ type: 'answer', sdp: loopbackOnlySdp(pcB.localDescription.sdp) });

  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([remote.video, remote.audio].filter(Boolean));
  document.getElementById('videos').append(video);
  video.play().catch(() => {});
  // Audio level of what B plays out, measured on the decoded samples (WebAudio).
  let analyser = null;
  if (remote.audio) {
    const audio = new Audio();
    audio.srcObject = new MediaStream([remote.audio]);
    audio.muted = true; // Chromium feeds WebAudio from a remote track only while an element plays it
    audio.play().catch(() => {});
    const ac = new AudioContext();
    await ac.resume().catch(() => {});
    analyser = ac.createAnalyser();
    analyser.fftSize = 2048;
    ac.createMediaStreamSource(new MediaStream([remote.audio])).connect(analyser);
  }
  state = { pcA, pcB, cryptoA, cryptoB, video, baseKey, media, analyser, offerSdp: pcA.localDescription.sdp };
  return { candidatesInOffer: candidateAddresses(state.offerSdp), usedKeyLength: baseKey.length };
}

function candidateAddresses(sdp) {
  return sdp
    .split('\r\n')
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.split(' ')[4]);
}

/** Addresses of the candidates A offered to B (after the loopback filter). */
export function offeredCandidates() {
  return candidateAddresses(loopbackOnlySdp(state.offerSdp));
}

/** Gives B the right key (after a wrong one): B must recover. */
export function giveRightKey() {
  state.cryptoB.addReceiverKey({ slot: SENDER_SLOT, generation: 0, step: 0, suite: 5, baseKey: state.baseKey });
}

/** Average brightness (0..255) and spread of the picture B shows, sampled on a canvas. */
export function samplePicture() {
  const v = state.video;
  if (!v.videoWidth) return { width: 0, height: 0, mean: 0, distinct: 0 };
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 36;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0;
  const distinct = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += y;
    distinct.add(Math.round(y / 8));
  }
  return { width: v.videoWidth, height: v.videoHeight, mean: sum / (data.length / 4), distinct: distinct.size };
}

/** Peak absolute sample (0..1) of B's decoded audio over the analyser's current window. */
export function audioPeak() {
  if (!state.analyser) return 0;
  const buf = new Float32Array(state.analyser.fftSize);
  state.analyser.getFloatTimeDomainData(buf);
  let peak = 0;
  for (const x of buf) peak = Math.max(peak, Math.abs(x));
  return peak;
}

/** Receiver and sender counters: getStats of both sides and the workers' counts. */
export async function snapshot() {
  const out = { video: null, audio: null, outVideo: null, connection: state.pcB.connectionState };
  (await state.pcB.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.video = { framesDecoded: r.framesDecoded ?? 0, framesReceived: r.framesReceived ?? 0, keyFramesDecoded: r.keyFramesDecoded ?? 0, packetsReceived: r.packetsReceived ?? 0, pliCount: r.pliCount ?? 0, decoder: r.decoderImplementation ?? null };
    }
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      out.audio = { packetsReceived: r.packetsReceived ?? 0, totalAudioEnergy: r.totalAudioEnergy ?? 0, totalSamplesReceived: r.totalSamplesReceived ?? 0, concealedSamples: r.concealedSamples ?? 0 };
    }
  });
  (await state.pcA.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video') out.outVideo = { framesEncoded: r.framesEncoded ?? 0, packetsSent: r.packetsSent ?? 0 };
  });
  out.sender = (await state.cryptoA.stats()).totals;
  const recv = state.cryptoB ? await state.cryptoB.stats() : null;
  out.receiver = recv?.totals ?? null;
  out.receiverTransforms = recv?.transforms ?? [];
  out.audioPeak = audioPeak();
  return out;
}

/** Closes everything. */
export function stop() {
  if (!state) return;
  state.pcA.close();
  state.pcB.close();
  state.cryptoA.close();
  state.cryptoB?.close();
  for (const t of state.media.getTracks()) t.stop();
  state.video.remove();
  state = null;
}
