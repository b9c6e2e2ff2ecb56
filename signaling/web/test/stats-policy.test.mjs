// Node unit tests: the getStats summary (on report objects shaped like Chromium's) and the
// recording policy check (real Ed25519 signatures by an admin key).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { concat, toBase64Url, utf8 } from '../e2ee/bytes.mjs';
import { generateDeviceIdentity, signWithIdentity } from '../e2ee/identity.mjs';
import { recordedLabel, recorderNamed, verifyRecordingPolicy } from '../recording-policy.js';
import { layerForHeight, qualityLevel, summarize } from '../stats.js';

function report(entries) {
  return new Map(entries.map((e) => [e.id, e]));
}

test('summarize: bitrates, loss and RTT from two reports one second apart', () => {
  const a = report([
    { id: 'in-v', type: 'inbound-rtp', kind: 'video', timestamp: 1000, bytesReceived: 100_000, packetsReceived: 1000, packetsLost: 10, frameHeight: 360, frameWidth: 640, trackIdentifier: 't1', jitter: 0.004 },
    { id: 'out-h', type: 'outbound-rtp', kind: 'video', rid: 'high', timestamp: 1000, bytesSent: 50_000 },
    { id: 'cp', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.03, availableOutgoingBitrate: 2e6, timestamp: 1000 },
  ]);
  const b = report([
    { id: 'in-v', type: 'inbound-rtp', kind: 'video', timestamp: 2000, bytesReceived: 162_500, packetsReceived: 1090, packetsLost: 20, frameHeight: 720, frameWidth: 1280, trackIdentifier: 't1', jitter: 0.005 },
    { id: 'out-h', type: 'outbound-rtp', kind: 'video', rid: 'high', timestamp: 2000, bytesSent: 175_000, frameWidth: 1280, frameHeight: 720 },
    { id: 'cp', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.031, availableOutgoingBitrate: 2e6, timestamp: 2000 },
  ]);
  const s = summarize(a, b);
  assert.equal(s.recvBitrate, 500_000);
  assert.equal(s.sendBitrate, 1_000_000);
  assert.equal(s.rtt, 0.031);
  assert.equal(s.loss, 10 / 100);
  assert.equal(s.inbound[0].layer, 'high');
  assert.equal(s.outbound[0].rid, 'high');
  // First sample: no previous report, no rates.
  assert.equal(summarize(null, a).recvBitrate, 0);
  assert.equal(layerForHeight(180), 'low');
  assert.equal(layerForHeight(360), 'medium');
  assert.equal(qualityLevel({ loss: 0.1, rtt: 0.02 }), 'poor');
  assert.equal(qualityLevel({ loss: 0.03, rtt: 0.02 }), 'fair');
  assert.equal(qualityLevel({ loss: 0, rtt: 0.02 }), 'good');
});

async function signedPolicy(admin, doc) {
  const document = utf8(JSON.stringify(doc));
  const sig = await signWithIdentity(admin, concat(utf8('e2ee-sfu/recording-policy/v1'), document));
  return { v: 1, document: toBase64Url(document), admin_key: toBase64Url(admin.identity.publicKey), sig: toBase64Url(sig) };
}

test('recording policy: signature, room, trusted admin key, named recorders', async () => {
  const admin = await generateDeviceIdentity({ deviceId: 'admin' });
  const other = await generateDeviceIdentity({ deviceId: 'other' });
  const rec = await generateDeviceIdentity({ deviceId: 'rec-1' });
  const recKey = toBase64Url(rec.identity.publicKey);
  const doc = { v: 1, room: 'standup', recorders: [{ device: 'rec-1', identity_key: recKey }], issued_at: 1700000000, retention_days: 90 };
  const policy = await signedPolicy(admin, doc);
  const ok = await verifyRecordingPolicy(policy, { room: 'standup', trustedAdminKeys: [toBase64Url(admin.identity.publicKey)] });
  assert.deepEqual(ok.recorders, [{ device: 'rec-1', identityKey: recKey }]);
  assert.equal(ok.trustedAdmin, true);
  assert.equal(ok.retentionDays, 90);
  assert.equal(recordedLabel(ok.retentionDays), 'Recorded · kept 90 days');
  assert.equal(recordedLabel(1), 'Recorded · kept 1 day');
  // Retention is required and bounded, as in the service and native clients.
  const { retention_days: _, ...withoutRetention } = doc;
  await assert.rejects(verifyRecordingPolicy(await signedPolicy(admin, withoutRetention), { room: 'standup' }), /retention_days/);
  for (const days of [0, 36501, 1.5, '90']) {
    await assert.rejects(verifyRecordingPolicy(await signedPolicy(admin, { ...doc, retention_days: days }), { room: 'standup' }), /retention_days/, `retention ${days}`);
  }
  assert.ok(recorderNamed(ok, { device: 'rec-1', bundle: { identity_key: recKey } }));
  assert.ok(!recorderNamed(ok, { device: 'rec-1', bundle: { identity_key: toBase64Url(other.identity.publicKey) } }), 'same id, other key');
  assert.ok(!recorderNamed(ok, { device: 'rec-2', bundle: { identity_key: recKey } }));
  await assert.rejects(verifyRecordingPolicy(policy, { room: 'other-room' }), /another room/);
  await assert.rejects(verifyRecordingPolicy(policy, { room: 'standup', trustedAdminKeys: [toBase64Url(other.identity.publicKey)] }), /does not trust/);
  // A policy whose document was changed after signing (another recorder added).
  const forged = { ...policy, document: toBase64Url(utf8(JSON.stringify({ ...doc, recorders: [...doc.recorders, { device: 'evil', identity_key: recKey }] }))) };
  await assert.rejects(verifyRecordingPolicy(forged, { room: 'standup' }), (e) => e.code === 'bad_signature');
  // Signed by someone else but presenting the admin's key.
  const bySomeoneElse = await signedPolicy(other, doc);
  await assert.rejects(verifyRecordingPolicy({ ...bySomeoneElse, admin_key: policy.admin_key }, { room: 'standup' }), (e) => e.code === 'bad_signature');
});
