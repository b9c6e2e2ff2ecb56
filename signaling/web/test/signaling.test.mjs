// The real page against the real signaling service (`signaling dev`; media goes through its
// SFU too, the media tests are sfu-call.test.mjs and broadcast.test.mjs): three
// browser devices (separate storage, so separate identities) join a room, exchange HPKE key
// envelopes through the service, agree on the call security code, rotate keys on join and leave
// per docs/protocol.md §4, and a device that comes back with a new identity key under the same
// device id raises the key-change warning.
//
// Needs the signaling binary: $SIGNALING_BIN, else target/debug/signaling (built by the test
// command's cargo steps). Skipped, saying why, when it is missing or does not run `dev`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, serveStatic, SKIP, waitFor } from './harness.mjs';
import { startDev } from './sfu-harness.mjs';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = process.env.SIGNALING_BIN || `${REPO}target/debug/signaling`;

function signalingSkip() {
  if (SKIP) return SKIP;
  if (!existsSync(BIN)) return `${BIN} not built (cargo build -p signaling)`;
  let out = '';
  try {
    out = execFileSync(BIN, ['token', '--room', 'probe', '--identity', 'probe', '--role', 'caller'], { stdio: 'pipe', timeout: 5000, encoding: 'utf8' });
  } catch {
    out = '';
  }
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(out.trim())) return `${BIN} cannot issue dev tokens yet (not the full signaling service)`;
  return false;
}

function token(room, identity, role = 'caller') {
  return execFileSync(BIN, ['token', '--room', room, '--identity', identity, '--role', role], { encoding: 'utf8' }).trim();
}

async function startSignaling() {
  // The join links `signaling dev` prints name its HTTP address (its logs also name the
  // embedded SFU's UDP address).
  const dev = await startDev();
  return { url: `${dev.http.replace(/^http/, 'ws')}/v1/rtc`, stop: dev.stop };
}

describe('web client against signaling dev', { skip: signalingSkip() }, () => {
  let server;
  let sig;
  let chromium;
  before(async () => {
    server = await serveStatic();
    sig = await startSignaling();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await sig?.stop();
    await server?.close();
  });

  async function device(room, identity, name) {
    const context = await chromium.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    let visits = 0;
    const open = async () => {
      // A different query each time: a URL differing only in its fragment would not reload.
      const q = new URLSearchParams({ room, name, join: '1', test: '1', signaling: sig.url, visit: String(++visits) });
      await page.goto(`${server.url}/?${q}#token=${token(room, identity)}`);
      await page.waitForFunction(() => window.__call?.state.phase === 'in-call' || window.__call?.state.phase === 'error', null, { timeout: 20_000 });
      const failed = await page.evaluate(() => window.__call.state.error);
      assert.equal(failed, null, `${identity} could not join`);
    };
    await open();
    const view = () =>
      page.evaluate(() => {
        const c = window.__call;
        return {
          device: c.state.self.device,
          slot: c.state.self.slot,
          code: c.state.securityCode,
          participants: [...c.state.participants.keys()].sort(),
          sending: c.keys.current && { generation: c.keys.current.generation, step: c.keys.current.step },
          received: Object.fromEntries(c.keys.received),
          warnings: c.state.warnings.map((w) => w.kind),
          refused: c.keys.refusedEnvelopes,
        };
      });
    return { context, page, errors, open, view };
  }

  test('join, key exchange, security code, rotation on join and leave, key-change warning', { timeout: 120_000 }, async () => {
    const room = `web-${Date.now()}`;
    const a = await device(room, 'alice', 'Alice');
    const b = await device(room, 'bob', 'Bob');
    const A = await a.view();
    let B = await b.view();
    assert.notEqual(A.device, B.device);

    // Each holds the other's key, received as an envelope through the service.
    const both = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: va.received[vb.device] && vb.received[va.device] && va.code === vb.code && va.participants.length === 2, va, vb };
    }, { timeoutMs: 20_000 });
    assert.ok(both.ok, JSON.stringify(both));
    assert.match(both.va.code, /^\d{25}$/);
    assert.equal(both.va.refused + both.vb.refused, 0);
    // Bob's arrival made Alice ratchet (the 64-byte ratcheted key of suite 5 went to Bob only);
    // Bob holds Alice's current generation.
    assert.equal(both.vb.received[A.device].generation, both.va.sending.generation);
    const codeWithTwo = both.va.code;

    // Carol joins: everyone ends on a key Carol holds and the code changes for all three.
    const c = await device(room, 'carol', 'Carol');
    const three = await waitFor(async () => {
      const v = [await a.view(), await b.view(), await c.view()];
      const codes = new Set(v.map((x) => x.code));
      const carolHas = Object.keys(v[2].received).length === 2;
      const current = v[0].sending.generation === v[2].received[v[0].device]?.generation && v[1].sending.generation === v[2].received[v[1].device]?.generation;
      return { ok: codes.size === 1 && carolHas && current && v.every((x) => x.participants.length === 3), v };
    }, { timeoutMs: 20_000 });
    assert.ok(three.ok, JSON.stringify(three.v));
    assert.notEqual(three.v[0].code, codeWithTwo);
    await a.page.screenshot({ path: artifact('signaling-three.png') });

    // Carol leaves with the Leave button: Alice and Bob make a new generation (rekey after the
    // service's debounce) that Carol never receives.
    const before = await a.view();
    await c.page.click('[data-ctl=leave]');
    await c.page.waitForFunction(() => window.__call.state.phase === 'left');
    const rekeyed = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: va.participants.length === 2 && va.sending.generation > before.sending.generation && vb.received[va.device]?.generation === va.sending.generation && va.code === codeWithTwo, va, vb };
    }, { timeoutMs: 20_000 });
    assert.ok(rekeyed.ok, JSON.stringify(rekeyed));
    assert.match(await c.page.textContent('.lobby-card'), /You left the call/);

    // Bob comes back under the same device id with a new identity key: Alice is warned.
    await b.page.evaluate(async () => {
      await window.__call.leave();
      const { generateDeviceIdentity } = await import('/e2ee/identity.mjs');
      const { openDatabase } = await import('/identity-store.js');
      const db = await openDatabase();
      const old = await new Promise((r) => { db.transaction('device').objectStore('device').get('identity').onsuccess = (e) => r(e.target.result); });
      const fresh = await generateDeviceIdentity({ deviceId: old.deviceId });
      await new Promise((r) => { const tx = db.transaction('device', 'readwrite'); tx.objectStore('device').put(fresh, 'identity'); tx.oncomplete = r; });
    });
    await b.open();
    B = await b.view();
    assert.equal(B.device, both.vb.device, 'same device id');
    const warned = await waitFor(async () => {
      const va = await a.view();
      return { ok: va.warnings.includes('key-changed') && va.participants.includes(B.device), va };
    }, { timeoutMs: 20_000 });
    assert.ok(warned.ok, JSON.stringify(warned.va));
    await a.page.waitForSelector('.warning.key-changed');
    assert.match(await a.page.textContent('.warning.key-changed'), /Bob's identity key changed/);
    await a.page.screenshot({ path: artifact('signaling-key-changed.png') });
    for (const d of [a, b, c]) assert.deepEqual(d.errors, []);
    for (const d of [a, b, c]) await d.context.close();
  });
});
