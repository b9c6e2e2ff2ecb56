/**
 * Test scenes for the call UI: the real CallView/Grid/panels and the real verification code
 * (real device identities, real security code and safety numbers), driven by a call object that
 * holds a made-up roster instead of a signaling session. Videos are canvas streams so tiles show
 * moving pictures. Used by ui.test.mjs for assertions and screenshots.
 */
import { mountCall } from '../../app.js';
import { generateDeviceIdentity } from '../../e2ee/identity.mjs';
import { formatDigitGroups, safetyNumber, securityCode } from '../../e2ee/verification.mjs';
import { pairVerification } from '../../e2ee/emoji.mjs';
import { EncryptionStatus, remotePublishers } from '../../e2ee-status.js';
import { ReactionBoard } from '../../reactions.js';

const PEOPLE = [
  ['Alice Martin', 'alice'], ['Bogdan Petrov', 'bogdan'], ['Chen Wei', 'chen'], ['Dana Cohen', 'dana'],
  ['Emeka Obi', 'emeka'], ['Fatima Zahra', 'fatima'], ['Gustav Berg', 'gustav'], ['Hana Sato', 'hana'],
  ['Ivan Horvat', 'ivan'], ['Julia Costa', 'julia'],
];

function canvasTrack(label, hue, { screen = false } = {}) {
  const c = document.createElement('canvas');
  c.width = screen ? 1280 : 640;
  c.height = screen ? 720 : 360;
  const ctx = c.getContext('2d');
  let t = 0;
  const draw = () => {
    t += 1;
    const g = ctx.createLinearGradient(0, 0, c.width, c.height);
    if (screen) {
      ctx.fillStyle = '#f4f6fa';
      ctx.fillRect(0, 0, c.width, c.height);
      ctx.fillStyle = '#1d2740';
      ctx.fillRect(0, 0, c.width, 70);
      ctx.fillStyle = 'white';
      ctx.font = 'bold 34px sans-serif';
      ctx.fillText('Q3 roadmap', 40, 48);
      const bars = [0.5, 0.8, 0.35, 0.65, 0.9];
      bars.forEach((b, i) => {
        ctx.fillStyle = `hsl(${210 + i * 25} 70% 55%)`;
        ctx.fillRect(120 + i * 200, 660 - b * 480, 120, b * 480);
      });
      ctx.fillStyle = '#333';
      ctx.font = '26px sans-serif';
      ctx.fillText('shared by ' + label, 40, 700);
    } else {
      g.addColorStop(0, `hsl(${hue} 45% 35%)`);
      g.addColorStop(1, `hsl(${(hue + 40) % 360} 50% 18%)`);
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, c.width, c.height);
      // A head-and-shoulders silhouette that moves slightly.
      const x = c.width / 2 + Math.sin(t / 20) * 12;
      ctx.fillStyle = `hsl(${hue} 30% 70%)`;
      ctx.beginPath();
      ctx.arc(x, 150, 62, 0, Math.PI * 2);
      ctx.fill();
      ctx.beginPath();
      ctx.ellipse(x, 360, 150, 120, 0, Math.PI, 0);
      ctx.fill();
    }
  };
  draw();
  setInterval(draw, 100);
  return c.captureStream(10).getVideoTracks()[0];
}

/** A call object with the interface mountCall uses, holding a made-up roster. */
class SceneCall extends EventTarget {
  constructor(state, identities) {
    super();
    this.state = state;
    this.identities = identities;
    this.visible = null;
  }
  _changed() { this.dispatchEvent(new Event('change')); }
  setMic(on) { this.state.local.micOn = on; this._changed(); }
  setCamera(on) { this.state.local.cameraOn = on; this._changed(); }
  async setScreen(on) { this.state.local.screenOn = on; this._changed(); }
  pin(d) { this.state.pinned = this.state.pinned === d ? null : d; this._changed(); }
  leave() { this.state.phase = 'left'; this._changed(); }
  setVisibleSizes(s) { this.visible = s; }
  async safetyNumberWith(device) {
    const me = this.identities.get(this.state.self.device);
    const other = this.identities.get(device);
    return formatDigitGroups(await safetyNumber({ device: me.deviceId, identityKey: me.identity.publicKey }, { device: other.deviceId, identityKey: other.identity.publicKey }));
  }
  async verificationCodesWith(device) {
    const me = this.identities.get(this.state.self.device);
    const other = this.identities.get(device);
    return pairVerification({ device: me.deviceId, identityKey: me.identity.publicKey }, { device: other.deviceId, identityKey: other.identity.publicKey });
  }
  /** Someone joins (a camera tile, no identity: keep the security panel closed). */
  addPerson(device, name) {
    this.state.participants.set(device, { device, identity: device, name, role: 'caller', slot: 100 + this.state.participants.size, self: false, verified: false, keyChanged: false, speaking: 0, videoTrack: canvasTrack(name, 120), quality: null });
    this._changed();
  }
  removePerson(device) {
    this.state.participants.delete(device);
    this._changed();
  }
  /** `device` becomes the active speaker (the `speakers` message: levels for it alone). */
  speak(device) {
    for (const p of this.state.participants.values()) p.speaking = p.device === device ? 0.8 : 0;
    this.state.activeSpeaker = device;
    this._changed();
  }
  async setVerified(device, v) {
    const p = this.state.participants.get(device);
    p.verified = v;
    if (v) p.keyChanged = false;
    this._changed();
  }
}

/**
 * Builds a scene. Params: `n` participants (default 7), `tiles` (visible tiles), `panel`
 * (security|quality), `pinned` (index), `screen` (index sharing a screen), `watch=1`,
 * `recorded=1`, `changed` (index whose key changed), `failures` (index with decrypt failures),
 * `badge` (`waiting`: the first other's key has not arrived; `failing`: the first other's
 * frames stop opening; default: everyone's open), worked out by the real EncryptionStatus;
 * `hands=1` (this device's and the second other's hands up, a 👍 from the first other, and
 * the chat, so the controls hold Raise hand and React).
 */
export async function showScene(params) {
  const n = Number(params.get('n') ?? 7);
  const watch = params.get('watch') === '1';
  const identities = new Map();
  const participants = new Map();
  const selfId = 'dev-self';
  const me = await generateDeviceIdentity({ deviceId: selfId });
  identities.set(selfId, me);
  participants.set(selfId, {
    device: selfId, identity: 'you', name: 'Robin Keller', role: watch ? 'viewer' : 'caller', slot: 1, self: true,
    verified: true, keyChanged: false, speaking: 0, identityKey: me.identity.publicKey,
    videoTrack: watch ? null : canvasTrack('you', 200), quality: null,
  });
  for (let i = 0; i < n; i++) {
    const [name, identity] = PEOPLE[i % PEOPLE.length];
    const device = `dev-${identity}${i >= PEOPLE.length ? i : ''}`;
    const id = await generateDeviceIdentity({ deviceId: device });
    identities.set(device, id);
    const hasVideo = i % 4 !== 3;
    participants.set(device, {
      device, identity, name, role: watch ? 'presenter' : 'caller', slot: i + 2, self: false,
      verified: i === 1 || i === 4, keyChanged: String(i) === params.get('changed'), speaking: i === 0 ? 0.8 : i === 2 ? 0.2 : 0,
      identityKey: id.identity.publicKey, audioMuted: i === 5,
      videoTrack: hasVideo ? canvasTrack(name, (i * 47) % 360) : null,
      screenTrack: String(i) === params.get('screen') ? canvasTrack(name, 0, { screen: true }) : null,
      quality: {
        level: i === 6 ? 'poor' : i === 3 ? 'fair' : 'good', bitrate: hasVideo ? 450_000 + i * 90_000 : 32_000, loss: i === 6 ? 0.11 : i === 3 ? 0.03 : 0.002,
        rtt: 0.024, width: hasVideo ? 640 : null, height: hasVideo ? 360 : null, layer: hasVideo ? (i === 6 ? 'low' : 'medium') : null,
        decryptFailures: String(i) === params.get('failures') ? 37 : 0,
      },
    });
  }
  if (params.get('recorded') === '1') {
    const rec = await generateDeviceIdentity({ deviceId: 'rec-1' });
    identities.set('rec-1', rec);
    participants.set('rec-1', { device: 'rec-1', identity: 'recorder', name: 'Compliance recorder', role: 'recorder', slot: 99, self: false, verified: false, keyChanged: false, speaking: 0, identityKey: rec.identity.publicKey });
  }
  const roster = [...participants.values()].map((p) => ({ device: p.device, identityKey: p.identityKey, role: p.role, slot: p.slot }));
  const call = 'c-demo-9aQ';
  const state = {
    phase: 'in-call', room: watch ? 'all-hands' : 'design-review', call, kind: watch ? 'broadcast' : 'meeting',
    self: { device: selfId, slot: 1, role: watch ? 'viewer' : 'caller', canPublish: !watch, canSubscribe: true },
    participants, activeSpeaker: [...participants.keys()][1] ?? null,
    pinned: params.get('pinned') !== null ? [...participants.keys()][Number(params.get('pinned')) + 1] : null,
    securityCode: await securityCode({ room: watch ? 'all-hands' : 'design-review', call, roster }),
    recorded: params.get('recorded') === '1' ? { recorders: ['rec-1'], verified: true, retentionDays: 90 } : null,
    warnings: [],
    local: { micOn: !watch, cameraOn: !watch, screenOn: false },
    quality: { level: 'good', sendBitrate: watch ? 0 : 1_240_000, recvBitrate: 3_380_000, rtt: 0.024, loss: 0.004,
      outbound: watch ? [] : [
        { kind: 'video', rid: 'low', bitrate: 140_000, width: 320, height: 180, limitation: 'none' },
        { kind: 'video', rid: 'medium', bitrate: 480_000, width: 640, height: 360, limitation: 'none' },
        { kind: 'video', rid: 'high', bitrate: 620_000, width: 1280, height: 720, limitation: 'bandwidth' },
      ], inbound: [] },
    e2ee: { generation: watch ? null : 3, step: watch ? null : 2, decrypted: 18234, failures: params.get('failures') ? 37 : 0, refusedEnvelopes: 0 },
  };
  // A participant whose frames fail (`failures=i`) makes the badge say so, as a live call's would.
  const failingIndex = params.get('failures');
  const failingDevice = failingIndex === null ? null : [...participants.values()].filter((p) => !p.self)[Number(failingIndex)]?.device;
  state.e2ee.status = badgeStatus(params.get('badge') ?? (failingDevice ? 'failing' : null), participants, watch, failingDevice);
  if (params.get('hands') === '1') {
    const others = [...participants.keys()].filter((d) => d !== selfId && d !== 'rec-1');
    state.hands = { queue: [others[1], selfId].filter(Boolean), mine: true, loweredBy: null };
    state.chat = { messages: [], unread: 0, open: false };
    state.reactions = new ReactionBoard({ showMs: 600_000 });
    if (others[0]) state.reactions.add(others[0], '👍', performance.now());
  }
  const changed = params.get('changed');
  if (changed !== null) {
    const p = [...participants.values()][Number(changed) + 1];
    state.warnings.push({ kind: 'key-changed', device: p.device, text: `${p.name}'s identity key changed since you last saw this device. Compare safety numbers before trusting it.` });
  }
  const sceneCall = new SceneCall(state, identities);
  window.sceneCall = sceneCall;
  const root = document.getElementById('app');
  const view = mountCall(root, sceneCall, { panel: params.get('panel'), visibleTiles: params.get('tiles') ? Number(params.get('tiles')) : undefined });
  window.sceneView = view;
  return { securityCode: state.securityCode, devices: [...participants.keys()] };
}

/** The badge of a scene, from worker reports made up over 6 s of virtual time. */
function badgeStatus(kind, participants, watch, failingDevice = null) {
  const others = [...participants.values()].filter((p) => !p.self);
  const first = (failingDevice && participants.get(failingDevice)) || others.find((p) => p.role === 'caller' || p.role === 'presenter');
  const received = new Map(others.map((p) => [p.device, { generation: 0, step: 0 }]));
  if (kind === 'waiting' && first) received.delete(first.device);
  const status = new EncryptionStatus();
  let out = null;
  for (let t = 0; t <= 6000; t += 1000) {
    const senders = others.map((p) => {
      const stuck = kind === 'failing' && p === first && t > 2000;
      return { slot: p.slot, decrypted: stuck ? 100 : t / 10, failures: stuck ? (t - 2000) / 10 : 0 };
    });
    out = status.observe(t, senders, remotePublishers(participants, received), watch ? null : true);
  }
  return out;
}
