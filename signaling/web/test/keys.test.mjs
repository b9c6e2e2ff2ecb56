// The key manager's rotation rules (docs/architecture.md §3.3, docs/protocol.md §4) on virtual time, with real
// identities, real HPKE envelopes and the real ratchet; a tiny in-memory router stands in for
// the signaling relay (it routes by recipient exactly as the service does).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBundle, generateDeviceIdentity } from '../e2ee/identity.mjs';
import { ratchetBaseKey } from '../e2ee/sframe.mjs';
import { encodeKid } from '../e2ee/kid.mjs';
import { SenderContext } from '../e2ee/media.mjs';
import { ReceiverKeyStore } from '../e2ee/receiver.mjs';
import { KEY_DEFAULTS, KeyManager } from '../keys.js';

const ROOM = 'standup';
const CALL = 'c-test';

/** A room of devices: managers, their outgoing messages and what they learned. */
async function room(names, { canPublish = () => true, recipientFilter = () => true, suite } = {}) {
  const devices = new Map();
  let slot = 1;
  for (const name of names) {
    const identity = await generateDeviceIdentity({ deviceId: name });
    devices.set(name, { name, identity, bundle: await createBundle(identity), slot: slot++, outbox: [], senderKeys: [], received: [] });
  }
  for (const d of devices.values()) {
    d.km = new KeyManager({
      identity: d.identity, room: ROOM, call: CALL, slot: d.slot, canPublish: canPublish(d.name), suite,
      send: (msg) => d.outbox.push(msg),
      onSenderKey: (k) => d.senderKeys.push(k),
      onReceiverKey: (k) => {
        d.received.push(k);
        d.onReceiverKey?.(k);
      },
    });
  }
  const entry = (d) => ({ device: d.name, role: 'caller', slot: d.slot, bundle: d.bundle, recipient: recipientFilter(d.name) });
  const r = {
    devices,
    get: (n) => devices.get(n),
    entry,
    /** Everyone sees `members` (default: all). */
    setRosters(members = [...devices.keys()]) {
      for (const n of members) devices.get(n).km.setRoster(members.map((m) => entry(devices.get(m))));
    },
    /** Delivers every queued message (and what the deliveries cause) until quiet. */
    async flush(now, { dropAcksFrom = [] } = {}) {
      const log = [];
      for (let round = 0; round < 10; round++) {
        const batch = [];
        for (const d of devices.values()) batch.push(...d.outbox.splice(0).map((m) => [d.name, m]));
        if (batch.length === 0) return log;
        for (const [from, msg] of batch) {
          log.push({ from, ...msg });
          if (msg.type === 'key_envelope') await devices.get(msg.envelope.recipient).km.onKeyEnvelope(msg.envelope);
          else if (msg.type === 'key_ack' && !dropAcksFrom.includes(from)) {
            await devices.get(msg.to).km.onKeyAck({ from, generation: msg.generation, step: msg.step }, now);
          }
        }
      }
      throw new Error('messages kept flowing');
    },
  };
  return r;
}

const envelopesIn = (log) => log.filter((m) => m.type === 'key_envelope').map((m) => `${m.from}->${m.envelope.recipient}:g${m.envelope.generation}s${m.envelope.step}`).sort();

test('start: generation 0 is used at once and wrapped to every other device, which opens and acks it', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters();
  await r.get('a').km.start(0);
  const log = await r.flush(0);
  assert.deepEqual(envelopesIn(log), ['a->b:g0s0', 'a->c:g0s0']);
  assert.deepEqual(log.filter((m) => m.type === 'key_ack').map((m) => `${m.from}->${m.to}`).sort(), ['b->a', 'c->a']);
  const [sent] = r.get('a').senderKeys;
  assert.equal(sent.generation, 0);
  assert.equal(sent.step, 0);
  for (const n of ['b', 'c']) {
    const [got] = r.get(n).received;
    assert.equal(got.device, 'a');
    assert.equal(got.slot, r.get('a').slot);
    assert.deepEqual(got.baseKey, sent.baseKey);
  }
  assert.notDeepEqual(r.get('a').senderKeys[0].baseKey, new Uint8Array(32));
});

test('join (SHA-256 suite 4): the sender ratchets one step and sends the ratcheted key to the joiner only', async () => {
  const r = await room(['a', 'b', 'c'], { suite: 4 });
  r.setRosters(['a', 'b']);
  await r.get('a').km.start(0);
  await r.flush(0);
  // c joins: roster delta, then membership ratchet.
  r.get('a').km.addDevice(r.entry(r.get('c')));
  r.get('c').km.setRoster(['a', 'b', 'c'].map((n) => r.entry(r.get(n))));
  await r.get('a').km.onMembership({ action: 'ratchet', joined: ['c'], left: [] }, 1000);
  const log = await r.flush(1000);
  assert.deepEqual(envelopesIn(log), ['a->c:g0s1'], 'only the joiner gets a key');
  const [k0, k1] = r.get('a').senderKeys;
  assert.equal(k1.generation, 0);
  assert.equal(k1.step, 1);
  assert.equal(k1.reason, 'ratchet');
  assert.deepEqual(k1.baseKey, await ratchetBaseKey(4, k0.baseKey), 'RFC 9605 ratchet of the previous key');
  assert.deepEqual(r.get('c').received[0].baseKey, k1.baseKey);
  // The joiner cannot go back to step 0 (it never got that key).
  assert.notDeepEqual(r.get('c').received[0].baseKey, k0.baseKey);
  // The periodic timer still counts from the generation's start.
  assert.equal(r.get('a').km.nextDeadline(), KEY_DEFAULTS.periodicMs);
});

test('join (default suite 5): the 64-byte ratcheted key goes to the joiner only, no new generation', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters(['a', 'b']);
  const a = r.get('a');
  await a.km.start(0);
  await r.flush(0);
  a.km.addDevice(r.entry(r.get('c')));
  r.get('c').km.setRoster(['a', 'b', 'c'].map((n) => r.entry(r.get(n))));
  await a.km.onMembership({ action: 'ratchet', joined: ['c'] }, 1000);
  const log = await r.flush(1000);
  // One envelope, to the joiner, at step 1 of generation 0; nothing pending.
  assert.deepEqual(envelopesIn(log), ['a->c:g0s1']);
  const [env] = log.filter((m) => m.type === 'key_envelope').map((m) => m.envelope);
  assert.equal(env.suite, 5);
  // ct = 64-byte key + 16-byte tag (docs/e2ee.md §3).
  assert.equal(Buffer.from(env.ct, 'base64url').length, 80);
  assert.equal(a.km.pending, null);
  const [k0, k1] = a.senderKeys;
  assert.equal(k1.reason, 'ratchet');
  assert.equal(k1.baseKey.length, 64);
  assert.deepEqual(k1.baseKey, await ratchetBaseKey(5, k0.baseKey), 'RFC 9605 ratchet (SHA-512, Nh = 64)');
  // The joiner opened the 64-byte key and acked it; it never got generation 0's step 0.
  const got = r.get('c').received;
  assert.equal(got.length, 1);
  assert.deepEqual([got[0].generation, got[0].step, got[0].suite], [0, 1, 5]);
  assert.deepEqual(got[0].baseKey, k1.baseKey);
  assert.deepEqual(log.filter((m) => m.type === 'key_ack').map((m) => `${m.from}->${m.to}:g${m.generation}s${m.step}`), ['c->a:g0s1']);
});

test('leave: a new generation goes to the remaining devices and is used once all acked', async () => {
  const r = await room(['a', 'b', 'c', 'd']);
  r.setRosters();
  await r.get('a').km.start(0);
  await r.flush(0);
  const a = r.get('a');
  a.km.removeDevices(['d'], 500);
  await a.km.onMembership({ action: 'rekey', joined: [], left: ['d'] }, 1500);
  assert.equal(a.senderKeys.length, 1, 'not used before the acks');
  assert.equal(a.km.pending.generation, 1);
  assert.equal(a.km.nextDeadline(), 1500 + KEY_DEFAULTS.ackTimeoutMs);
  const log = await r.flush(1600);
  assert.deepEqual(envelopesIn(log), ['a->b:g1s0', 'a->c:g1s0'], 'the leaver gets nothing');
  assert.equal(a.senderKeys.length, 2);
  const k = a.senderKeys[1];
  assert.equal(k.generation, 1);
  assert.equal(k.step, 0);
  assert.equal(k.reason, 'rekey:acked');
  assert.notDeepEqual(k.baseKey, a.senderKeys[0].baseKey);
  assert.equal(a.km.pending, null);
});

test('leave: without every ack the new generation is used at the ack timeout', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters();
  await r.get('a').km.start(0);
  await r.flush(0);
  const a = r.get('a');
  await a.km.onMembership({ action: 'rekey', left: ['x'] }, 10_000);
  await r.flush(10_100, { dropAcksFrom: ['c'] });
  assert.equal(a.senderKeys.length, 1, 'c has not acked');
  assert.deepEqual([...a.km.pending.waiting], ['c']);
  const deadline = a.km.nextDeadline();
  assert.equal(deadline, 10_000 + KEY_DEFAULTS.ackTimeoutMs);
  await a.km.poll(deadline - 1);
  assert.equal(a.senderKeys.length, 1);
  await a.km.poll(deadline);
  assert.equal(a.senderKeys.length, 2);
  assert.equal(a.senderKeys[1].reason, 'rekey:ack-timeout');
  assert.equal(a.senderKeys[1].generation, 1);
});

test('leave: a device that leaves while its ack is awaited is no longer awaited', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters();
  await r.get('a').km.start(0);
  await r.flush(0);
  const a = r.get('a');
  await a.km.onMembership({ action: 'rekey', left: ['x'] }, 0);
  await r.flush(10, { dropAcksFrom: ['c'] });
  a.km.removeDevices(['c'], 20);
  assert.equal(a.senderKeys.at(-1).generation, 1);
  assert.equal(a.senderKeys.at(-1).reason, 'rekey:acked');
});

test('a rekey while one is pending replaces it (the pending key reached a device that left)', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters();
  await r.get('a').km.start(0);
  await r.flush(0);
  const a = r.get('a');
  await a.km.onMembership({ action: 'rekey', left: ['x'] }, 0);
  a.outbox.length = 0; // lost in flight
  const first = a.km.pending;
  a.km.removeDevices(['c'], 50);
  await a.km.onMembership({ action: 'rekey', left: ['c'] }, 100);
  assert.equal(a.km.pending.generation, 2);
  assert.notDeepEqual(a.km.pending.baseKey, first.baseKey);
  const log = await r.flush(200);
  assert.deepEqual(envelopesIn(log), ['a->b:g2s0']);
  assert.equal(a.senderKeys.at(-1).generation, 2);
  assert.ok(!a.senderKeys.some((k) => k.generation === 1), 'the replaced generation is never used');
});

test('periodic: a new generation every 5 minutes, switched after the acks', async () => {
  const r = await room(['a', 'b']);
  r.setRosters();
  const a = r.get('a');
  await a.km.start(1000);
  await r.flush(1000);
  assert.equal(a.km.nextDeadline(), 1000 + 300_000);
  await a.km.poll(300_999);
  assert.equal(a.km.pending, null);
  await a.km.poll(301_000);
  assert.equal(a.km.pending?.generation, 1);
  await r.flush(301_010);
  assert.equal(a.senderKeys.at(-1).generation, 1);
  assert.equal(a.senderKeys.at(-1).reason, 'periodic:acked');
  assert.equal(a.km.nextDeadline(), 301_010 + 300_000, 'the next period counts from the switch');
  assert.equal(r.get('b').received.at(-1).generation, 1);
});

test('a ratchet past step 255 makes a new generation instead', async () => {
  const r = await room(['a', 'b', 'c'], { suite: 4 });
  r.setRosters(['a', 'b']);
  const a = r.get('a');
  await a.km.start(0);
  await r.flush(0);
  a.km.current.step = 255; // as after 255 joins
  a.km.addDevice(r.entry(r.get('c')));
  r.get('c').km.setRoster(['a', 'b', 'c'].map((n) => r.entry(r.get(n))));
  await a.km.onMembership({ action: 'ratchet', joined: ['c'] }, 10);
  const log = await r.flush(20);
  assert.deepEqual(envelopesIn(log), ['a->b:g1s0', 'a->c:g1s0']);
  assert.equal(a.senderKeys.at(-1).generation, 1);
});

test('key_request: the current key is sent again to that device only', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters();
  const a = r.get('a');
  await a.km.start(0);
  await r.flush(0);
  await a.km.onKeyRequest({ from: 'b', generation: 0 });
  await a.km.onKeyRequest({ from: 'stranger' });
  const log = await r.flush(10);
  assert.deepEqual(envelopesIn(log), ['a->b:g0s0']);
});

test('refused envelopes: unknown sender, tampered, other call; none reaches the key store', async () => {
  const r = await room(['a', 'b', 'c']);
  r.setRosters(['a', 'b']);
  const a = r.get('a');
  await a.km.start(0);
  const [msg] = a.outbox.splice(0);
  const b = r.get('b').km;
  // c is not in b's roster.
  assert.equal(await b.onKeyEnvelope({ ...msg.envelope, sender: 'c' }), null);
  // A flipped ciphertext byte: the signature fails.
  const ct = msg.envelope.ct;
  const flipped = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
  assert.equal(await b.onKeyEnvelope({ ...msg.envelope, ct: flipped }), null);
  // Another call: refused before opening.
  assert.equal(await b.onKeyEnvelope({ ...msg.envelope, call: 'c-other' }), null);
  assert.equal(b.refusedEnvelopes, 3);
  assert.equal(r.get('b').received.length, 0);
  assert.equal(r.get('b').outbox.length, 0, 'nothing acked');
  // The genuine one opens.
  assert.ok(await b.onKeyEnvelope(msg.envelope));
  assert.equal(r.get('b').received.length, 1);
});

test('a device marked not to be a recipient (an unnamed recorder) never gets a key; viewers hold no sender key', async () => {
  const r = await room(['a', 'rec', 'v'], { canPublish: (n) => n === 'a', recipientFilter: (n) => n !== 'rec' });
  r.setRosters();
  await r.get('a').km.start(0);
  await r.get('v').km.start(0);
  const log = await r.flush(0);
  assert.deepEqual(envelopesIn(log), ['a->v:g0s0']);
  assert.equal(r.get('v').senderKeys.length, 0);
  assert.equal(r.get('v').km.nextDeadline(), Infinity);
  await r.get('v').km.onMembership({ action: 'rekey', left: ['x'] }, 5);
  assert.equal(r.get('v').outbox.length, 0);
});

test('a receiver beyond the ratchet window recovers by key_request', async () => {
  const r = await room(['a', 'b']);
  r.setRosters();
  const store = new ReceiverKeyStore();
  r.get('b').onReceiverKey = (k) => store.addKey(k, 0);
  await r.get('a').km.start(0);
  await r.flush(0);
  const frame = new Uint8Array([0xfc, 1, 2, 3, 4, 5]);
  const sealNow = async () => {
    const k = r.get('a').senderKeys.at(-1);
    const kid = encodeKid({ slot: r.get('a').slot, stream: 0, generation: k.generation, step: k.step });
    const ctx = await SenderContext.create({ suite: k.suite, baseKey: k.baseKey, kid });
    return ctx.encryptFrame('opus', frame);
  };
  assert.deepEqual((await store.decryptFrame('opus', await sealNow(), 0)).frame, frame);
  // a ratchets 20 times (joiners that left at once) while b sees none of its frames.
  for (let i = 0; i < 20; i++) await r.get('a').km.onMembership({ action: 'ratchet', joined: [] }, 0);
  assert.equal(r.get('a').km.current.step, 20);
  const beyond = await sealNow();
  await assert.rejects(store.decryptFrame('opus', beyond, 0), { code: 'ratchet_out_of_range' });
  // b reports it: one key_request to a, which sends its current key again.
  assert.equal(r.get('b').km.onUndecryptable({ slot: r.get('a').slot, generation: 0 }, 10), true);
  const [request] = r.get('b').outbox.splice(0);
  assert.deepEqual(request, { type: 'key_request', to: 'a', generation: 0 });
  await r.get('a').km.onKeyRequest({ from: 'b' });
  await r.flush(10);
  assert.deepEqual((await store.decryptFrame('opus', await sealNow(), 10)).frame, frame);
  // Within the interval nothing more is asked; after it, again.
  assert.equal(r.get('b').km.onUndecryptable({ slot: r.get('a').slot, generation: 0 }, 500), false);
  assert.equal(r.get('b').km.onUndecryptable({ slot: r.get('a').slot, generation: 0 }, 10 + KEY_DEFAULTS.requestIntervalMs), true);
});
