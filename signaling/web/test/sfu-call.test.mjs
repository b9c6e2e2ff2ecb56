// Browser calls through the real service: `signaling dev` (signaling + the embedded SFU on
// 127.0.0.1), the page it serves, headless Chromium with fake camera and microphone, loopback
// only. Two devices hear each other, show the same security code, and the first renders the
// second's camera (not black); a device given a wrong key decodes nothing, shows the decrypt
// failures in its quality panel, and recovers when the sender sends its key again; when a
// third device leaves, the other two switch to a new generation and keep playing each other's
// media. Cameras play both ways, also the first joiner's at the second joiner and after the
// renegotiations that joins and leaves cause (README, "Found in the SFU").
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, picture, serviceSkip, sleep, startDev, view } from './sfu-harness.mjs';

describe('browser calls through signaling dev and its SFU', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  let a;
  let b;
  let afterRekey;
  const room = `call-${Date.now()}`;
  before(async () => {
    dev = await startDev();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('two browsers hear each other, show the same security code, and the second joiner\'s camera plays at the first', { timeout: 90_000 }, async () => {
    a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    const fromMic = (v, device) => v.recvTransforms.filter((t) => t.kind === 'audio' && t.lastSlot !== null).reduce((n, t) => n + t.frames, 0);
    const both = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      const ok = decodedFrom(va, b.device) >= 30 && fromMic(va) >= 100 && fromMic(vb) >= 100 && va.audioEnergy > 0 && vb.audioEnergy > 0 && va.code === vb.code;
      return { ok, va, vb };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    assert.ok(both.ok, `no call: ${JSON.stringify(both, null, 1)}`);
    const { va, vb } = both;
    assert.match(va.code, /^\d{25}$/);
    assert.deepEqual(va.participants, [a.device, b.device].sort());
    // Everything each page played went through its decrypting worker. Frames that arrive
    // before their key's envelope are dropped as `unknown_kid` (a join race, counted); none
    // failed authentication.
    for (const t of [...va.recvTransforms, ...vb.recvTransforms]) assert.notEqual(t.lastError, 'auth_failed', JSON.stringify(t));
    assert.equal(va.worker.dropped + vb.worker.dropped, 0);

    // Alice's picture is Bob's camera, not black, and decoding goes on.
    const pic = await picture(a.page, b.device);
    assert.ok(pic.width > 0 && pic.mean > 30 && pic.distinct >= 4, `alice sees ${JSON.stringify(pic)}`);
    await sleep(1000);
    const later = await a.view();
    assert.ok(decodedFrom(later, b.device) > decodedFrom(va, b.device), 'decoding goes on');

    await a.page.screenshot({ path: artifact('sfu-two-party-call.png') });
    await b.page.screenshot({ path: artifact('sfu-two-party-call-bob.png') });
    await a.page.click('.code-chip');
    await a.page.waitForSelector('.security-panel');
    await sleep(300);
    await a.page.screenshot({ path: artifact('sfu-verification-panel.png') });
    await a.page.click('.code-chip');
    assert.deepEqual([...a.errors, ...b.errors], []);
  });

  test('the first joiner\'s camera plays at the second joiner', { timeout: 30_000 }, async () => {
    assert.ok(a && b, 'needs the two-party call');
    const v1 = await b.view();
    await sleep(3000);
    const v2 = await b.view();
    assert.ok(decodedFrom(v2, a.device) >= decodedFrom(v1, a.device) + 30, `bob decoded ${decodedFrom(v1, a.device)} → ${decodedFrom(v2, a.device)} frames of alice's camera`);
    const pic = await picture(b.page, a.device);
    assert.ok(pic.width > 0 && pic.mean > 30 && pic.distinct >= 4, `bob sees ${JSON.stringify(pic)}`);
  });

  test('a wrong key decodes nothing and shows decrypt failures; the right key recovers it', { timeout: 60_000 }, async () => {
    assert.ok(a && b, 'needs the two-party call');
    const vb0 = await b.view();
    // Alice's key store gets a wrong key for Bob's current generation and step (what a broken
    // or forged envelope would leave behind).
    await a.page.evaluate(({ slot, generation, step }) => {
      const baseKey = crypto.getRandomValues(new Uint8Array(32));
      window.__call.media.addReceiverKey({ slot, generation, step, suite: 5, baseKey });
    }, { slot: vb0.slot, generation: vb0.sending.generation, step: vb0.sending.step });
    await sleep(300);
    const start = await a.view();
    await sleep(2500);
    const wrong = await a.view();
    const fromBob = (v) => v.recvTransforms.filter((t) => t.kind === 'video').reduce((s, t) => s + t.failures, 0);
    assert.ok(fromBob(wrong) - fromBob(start) >= 20, `failures counted: ${JSON.stringify(wrong.recvTransforms)}`);
    assert.ok(decodedFrom(wrong, b.device) - decodedFrom(start, b.device) <= 1, `nothing decodes: ${decodedFrom(start, b.device)} → ${decodedFrom(wrong, b.device)}`);
    assert.ok(wrong.recvTransforms.some((t) => t.lastError === 'auth_failed'), JSON.stringify(wrong.recvTransforms));
    // The quality panel shows the failures.
    await a.page.click('[data-ctl=quality]');
    const panelText = await waitFor(async () => {
      const t = await a.page.textContent('.quality-panel');
      // The panel writes each value before its label ("762Decrypt failures"); matching the
      // digits after the label read the next row's key generation instead.
      const m = /(\d+)\s*decrypt failures/i.exec(t ?? '');
      return { ok: m && Number(m[1]) > 0, t };
    }, { timeoutMs: 8000 });
    assert.ok(panelText.ok, `quality panel: ${panelText.t}`);
    await a.page.screenshot({ path: artifact('sfu-wrong-key.png') });

    // Alice asks Bob for his key again (what the page does on an unknown KID); his envelope
    // replaces the wrong key and the video comes back after a keyframe.
    await a.page.evaluate((to) => window.__call.signaling.send({ type: 'key_request', to }), b.device);
    const back = await waitFor(async () => {
      const v = await a.view();
      return { ok: decodedFrom(v, b.device) >= decodedFrom(wrong, b.device) + 20, v };
    }, { timeoutMs: 15_000, intervalMs: 500 });
    assert.ok(back.ok, `no recovery: ${JSON.stringify(back.v.recvTransforms)}`);
    const pic = await picture(a.page, b.device);
    assert.ok(pic.mean > 30 && pic.distinct >= 4, JSON.stringify(pic));
    await a.page.click('[data-ctl=quality]');
  });

  test('when a third browser leaves, the other two switch to a new generation and keep hearing each other', { timeout: 90_000 }, async () => {
    assert.ok(a && b, 'needs the two-party call');
    const c = await openDevice(chromium, dev.http, room, 'carol', { name: 'Carol' });
    const three = await waitFor(async () => {
      const v = [await a.view(), await b.view(), await c.view()];
      const ok = v.every((x) => x.participants.length === 3) && new Set(v.map((x) => x.code)).size === 1 && decodedFrom(v[0], c.device) >= 10;
      return { ok, v };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    assert.ok(three.ok, `three-party call: ${JSON.stringify(three.v.map((x) => ({ p: x.participants, code: x.code, remote: x.remote, inbound: x.inbound })))}`);
    const [ga, gb] = [three.v[0].sending.generation, three.v[1].sending.generation];

    await c.page.click('[data-ctl=leave]');
    await c.page.waitForFunction(() => window.__call.state.phase === 'left');
    const rekeyed = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      const ok =
        va.participants.length === 2 && vb.participants.length === 2 &&
        va.sending.generation > ga && vb.sending.generation > gb &&
        vb.received[a.device]?.generation === va.sending.generation && va.received[b.device]?.generation === vb.sending.generation;
      return { ok, va, vb };
    }, { timeoutMs: 20_000, intervalMs: 500 });
    assert.ok(rekeyed.ok, `no rekey: ${JSON.stringify({ a: rekeyed.va.sending, b: rekeyed.vb.sending, ra: rekeyed.va.received, rb: rekeyed.vb.received })}`);
    // Media under the new generations plays on both sides: each keeps decrypting and playing
    // the other's microphone, with no failure (video: the next test).
    const s = rekeyed;
    const mic = (v) => v.recvTransforms.filter((t) => t.kind === 'audio').reduce((n, t) => n + t.frames, 0);
    const going = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      const ok = mic(va) >= mic(s.va) + 50 && mic(vb) >= mic(s.vb) + 50 && va.audioEnergy > s.va.audioEnergy && vb.audioEnergy > s.vb.audioEnergy;
      return { ok, va, vb };
    }, { timeoutMs: 15_000, intervalMs: 500 });
    const brief = (v) => ({ inbound: v.inbound, recv: v.recvTransforms.map((t) => `${t.id}:${t.frames}/${t.failures}`) });
    assert.ok(going.ok, `media after the rekey: ${JSON.stringify({ before: { a: brief(s.va), b: brief(s.vb) }, after: { a: brief(going.va), b: brief(going.vb) } })}`);
    assert.equal(going.va.worker.failures - s.va.worker.failures + going.vb.worker.failures - s.vb.worker.failures, 0);
    afterRekey = s;
    await c.context.close();
    assert.deepEqual([...a.errors, ...b.errors, ...c.errors], []);
  });

  test('after the rekey the two keep seeing each other', { timeout: 30_000 }, async () => {
    assert.ok(afterRekey, 'needs the rekey test');
    const s = afterRekey;
    const going = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: decodedFrom(va, b.device) >= decodedFrom(s.va, b.device) + 20 && decodedFrom(vb, a.device) >= decodedFrom(s.vb, a.device) + 20, va, vb };
    }, { timeoutMs: 8_000, intervalMs: 500 });
    assert.ok(going.ok, `decoded after the rekey: alice ${decodedFrom(s.va, b.device)} → ${decodedFrom(going.va, b.device)}, bob ${decodedFrom(s.vb, a.device)} → ${decodedFrom(going.vb, a.device)}`);
  });
});
