// The join ratchet with the default suite 0x0005 in real browsers through the real service
// (`signaling dev` with its SFU, the page it serves, headless Chromium, loopback only): a third
// page joins a two-page call; each existing sender sends exactly one key envelope, to the joiner
// only, carrying its 64-byte ratcheted key (RFC 9605 §5.1, docs/e2ee.md §3); no new generation
// starts; the joiner decrypts both senders' media under those keys.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, serviceSkip, sleep, startDev } from './sfu-harness.mjs';

/**
 * Records every key message the page sends and receives (metadata only, never the key):
 * `window.__keyLog = [{dir, type, to|from, generation, step, suite, ctBytes}]`.
 */
const RECORD_KEY_MESSAGES = `
  window.__keyLog = [];
  const record = (dir, text) => {
    try {
      const m = JSON.parse(text);
      if (m.type === 'key_envelope') {
        const e = m.envelope;
        window.__keyLog.push({ dir, type: m.type, to: e.recipient, from: e.sender, generation: e.generation, step: e.step, suite: e.suite, ctBytes: Math.floor((e.ct.length * 3) / 4) });
      } else if (m.type === 'key_request' || m.type === 'key_ack') {
        window.__keyLog.push({ dir, type: m.type, to: m.to, from: m.from, generation: m.generation, step: m.step });
      }
    } catch {}
  };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === 'string') record('out', data);
    return send.call(this, data);
  };
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage');
  Object.defineProperty(WebSocket.prototype, 'onmessage', {
    get() { return onmessage.get.call(this); },
    set(fn) { onmessage.set.call(this, (ev) => { if (typeof ev.data === 'string') record('in', ev.data); return fn?.call(this, ev); }); },
  });
`;

const keyLog = (d) => d.page.evaluate(() => window.__keyLog);
const keyState = (d) =>
  d.page.evaluate(() => {
    const k = window.__call.keys;
    return { suite: k.suite, current: k.current && { generation: k.current.generation, step: k.current.step, length: k.current.baseKey.length }, pending: k.pending && k.pending.generation, received: Object.fromEntries(k.received) };
  });

describe('the join ratchet with suite 0x0005 through signaling dev and its SFU', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  const room = `ratchet-${Date.now()}`;
  before(async () => {
    dev = await startDev();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('suite5_key_ratchets_on_join', { timeout: 120_000 }, async () => {
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: RECORD_KEY_MESSAGES });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', init: RECORD_KEY_MESSAGES });
    // The two-page call settles: each holds the other's current key and decodes its camera.
    const two = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      const [ka, kb] = [await keyState(a), await keyState(b)];
      const ok = !ka.pending && !kb.pending && vb.received[a.device]?.step === ka.current?.step && va.received[b.device]?.step === kb.current?.step && decodedFrom(va, b.device) >= 10 && decodedFrom(vb, a.device) >= 10;
      return { ok, ka, kb };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    assert.ok(two.ok, JSON.stringify(two));
    const [ka0, kb0] = [two.ka, two.kb];
    assert.equal(ka0.suite, 5);
    assert.equal(kb0.suite, 5);
    const [sentA, sentB] = [(await keyLog(a)).length, (await keyLog(b)).length];

    const c = await openDevice(chromium, dev.http, room, 'carol', { name: 'Carol', init: RECORD_KEY_MESSAGES });
    // The joiner decrypts both senders' media: their cameras decode and none fails authentication.
    const three = await waitFor(async () => {
      const vc = await c.view();
      const ok = decodedFrom(vc, a.device) >= 30 && decodedFrom(vc, b.device) >= 30;
      return { ok, vc };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    assert.ok(three.ok, `carol decodes nothing: ${JSON.stringify(three.vc?.inbound)}`);
    // Leave time for any late key traffic (a request answered, a rotation) to show up.
    await sleep(2000);

    for (const [d, k0, before] of [[a, ka0, sentA], [b, kb0, sentB]]) {
      const k1 = await keyState(d);
      // Ratcheted one step within the same generation; no new generation pending or used.
      assert.deepEqual(k1.current, { generation: k0.current.generation, step: k0.current.step + 1, length: 64 }, d.identity);
      assert.equal(k1.pending, null, `${d.identity} started no new generation`);
      // Exactly one envelope since the join, to the joiner, suite 5, ct = 64 + 16 bytes.
      const sent = (await keyLog(d)).slice(before).filter((m) => m.dir === 'out' && m.type === 'key_envelope');
      assert.deepEqual(sent, [{ dir: 'out', type: 'key_envelope', to: c.device, from: d.device, generation: k1.current.generation, step: k1.current.step, suite: 5, ctBytes: 80 }], d.identity);
    }
    // The joiner holds exactly those keys (acked), asked for none, and decrypted without failures.
    const kc = await keyState(c);
    const ka1 = await keyState(a);
    const kb1 = await keyState(b);
    assert.deepEqual(kc.received[a.device], { generation: ka1.current.generation, step: ka1.current.step });
    assert.deepEqual(kc.received[b.device], { generation: kb1.current.generation, step: kb1.current.step });
    const cLog = await keyLog(c);
    assert.deepEqual(cLog.filter((m) => m.dir === 'out' && m.type === 'key_request'), [], 'carol needed no key request');
    const fromOthers = cLog.filter((m) => m.dir === 'in' && m.type === 'key_envelope');
    assert.deepEqual(fromOthers.map((m) => `${m.from}:g${m.generation}s${m.step}:${m.ctBytes}`).sort(), [`${a.device}:g${ka1.current.generation}s${ka1.current.step}:80`, `${b.device}:g${kb1.current.generation}s${kb1.current.step}:80`].sort());
    const vc = await c.view();
    for (const t of vc.recvTransforms) assert.notEqual(t.lastError, 'auth_failed', JSON.stringify(t));
    // The existing pair keeps decoding each other after the ratchet (they follow it by themselves).
    const [va1, vb1] = [await a.view(), await b.view()];
    await sleep(1500);
    const [va2, vb2] = [await a.view(), await b.view()];
    assert.ok(decodedFrom(va2, b.device) > decodedFrom(va1, b.device), 'alice still decodes bob');
    assert.ok(decodedFrom(vb2, a.device) > decodedFrom(vb1, a.device), 'bob still decodes alice');
    assert.deepEqual([...a.errors, ...b.errors, ...c.errors], []);
  });
});
