// The call a user expects, through the real service (`signaling dev` with its embedded SFU):
// a normal three-person call (joins, a screen share started and stopped, a leave) never shows
// an error banner; a device without a camera joins audio-only and is heard, one with no device
// at all watches and listens; a join attempt that fails leaves no ghost participant in the
// room.
//
// Banners are watched throughout, not only at the end: an init script records every warning
// banner (`.warning`) and lobby error (`.form-error`) the moment it is added to the page.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, serviceSkip, sleep, startDev, token, WINDOW } from './sfu-harness.mjs';
import { NO_CAMERA, WATCH_BANNERS } from './page-init.mjs';

/** A browser with neither camera nor microphone. */
const NO_DEVICES = () => {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
};

/** A join that fails after `joined`: the peer connection cannot make its offer. */
const OFFER_FAILS = () => {
  RTCPeerConnection.prototype.createOffer = () => Promise.reject(new DOMException('offer refused by the test', 'OperationError'));
};

const banners = (d) => d.page.evaluate(() => window.__banners ?? []);
const participants = (d) => d.page.evaluate(() => [...window.__call.state.participants.keys()].sort());

async function roomDetail(http, room) {
  const res = await fetch(`${http}/v1/rooms/${encodeURIComponent(room)}`, { headers: { authorization: 'Bearer devadmin' } });
  assert.equal(res.status, 200, `GET /v1/rooms/${room}`);
  return res.json();
}

describe('the call a user expects', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  before(async () => {
    dev = await startDev();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('three_person_call_shows_no_error_banner', { timeout: 120_000 }, async () => {
    const room = `banners-${Date.now()}`;
    const devices = [];
    // Every banner any page ever showed, polled between steps as well as recorded by the
    // init script the moment one appears.
    const check = async (step) => {
      for (const d of devices) {
        const shown = await banners(d);
        assert.deepEqual(shown, [], `${d.identity} showed a banner (${step})`);
      }
    };
    // All three at once, as two people opening their links together do: joins overlap with
    // the others' negotiations.
    const [a, b, c] = await Promise.all([
      openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS }),
      openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', init: WATCH_BANNERS }),
      openDevice(chromium, dev.http, room, 'carol', { name: 'Carol', init: WATCH_BANNERS }),
    ]);
    devices.push(a, b, c);
    const all = [a.device, b.device, c.device].sort();
    const joined = await waitFor(async () => {
      await check('joining');
      const vs = await Promise.all(devices.map((d) => d.view()));
      const ok = vs.every((v) => v.participants.join() === all.join() && v.audioPackets > 50) && decodedFrom(vs[0], c.device) > 10;
      return { ok, vs: vs.map((v) => ({ participants: v.participants.length, audio: v.audioPackets })) };
    }, { timeoutMs: 45_000, intervalMs: 500 });
    assert.ok(joined.ok, JSON.stringify(joined));

    // Carol shares her screen (headless Chromium picks a screen by itself with the fake UI
    // flag), Alice decodes it, Carol stops.
    await c.page.evaluate(() => window.__call.setScreen(true));
    const shared = await waitFor(async () => {
      await check('sharing');
      return decodedFrom(await a.view(), c.device, 'screen') > 5;
    }, { timeoutMs: 20_000, intervalMs: 500 });
    assert.ok(shared, 'alice decodes carol\'s screen');
    await a.page.screenshot({ path: artifact('call-three-sharing.png') });
    await c.page.evaluate(() => window.__call.setScreen(false));
    // The SFU keeps the stopped share's track (its section is only inactive): subscriptions
    // naming it stay valid. Poll a while for a late refusal.
    for (let i = 0; i < 12; i++) {
      await check('after the share stopped');
      await sleep(250);
    }
    assert.equal(await c.page.evaluate(() => window.__call.state.local.screenOn), false);

    // Bob leaves; the others see him go and keep going without a banner.
    await b.page.evaluate(() => window.__call.leave());
    devices.splice(devices.indexOf(b), 1);
    const gone = await waitFor(async () => {
      await check('after bob left');
      const ps = await Promise.all([a, c].map(participants));
      return ps.every((p) => p.length === 2);
    }, { timeoutMs: 10_000, intervalMs: 250 });
    assert.ok(gone, 'bob left everyone\'s roster');
    // Let late refusals (subscriptions racing the leave) arrive, polling all the while.
    for (let i = 0; i < 12; i++) {
      await check('settling');
      await sleep(250);
    }
    await a.page.screenshot({ path: artifact('call-three-after-leave.png') });
    const visible = await a.page.locator('.warning').count();
    assert.equal(visible, 0);
    for (const d of [a, b, c]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b, c]) await d.context.close();
  });

  test('join_without_camera_is_audio_only_and_leaves_no_ghost', { timeout: 120_000 }, async () => {
    const room = `nocam-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS });
    const n = await openDevice(chromium, dev.http, room, 'nadia', { name: 'Nadia', init: `(${WATCH_BANNERS})(); (${NO_CAMERA})();` });
    const local = await n.page.evaluate(() => ({ ...window.__call.state.local, published: window.__call.publishedSources() }));
    assert.deepEqual(local, { micOn: true, cameraOn: false, screenOn: false, hasMic: true, hasCamera: false, published: ['microphone'] });
    assert.equal(await n.page.isDisabled('[data-ctl=camera]'), true, 'no camera button to press');
    // Alice has Nadia in her roster and receives and decrypts her microphone.
    const heard = await waitFor(async () => {
      const va = await a.view();
      const fromNadia = va.remote.filter((r) => r.device === n.device && r.kind === 'audio').map((r) => r.id);
      const frames = va.recvTransforms.filter((t) => fromNadia.includes(t.id)).reduce((s, t) => s + t.frames, 0);
      return { ok: va.participants.includes(n.device) && frames > 50 && va.audioEnergy > 0, frames, participants: va.participants };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(heard.ok, JSON.stringify(heard));
    // Nadia's page says what happened, calmly, and shows no error.
    const note = await n.page.locator('.notice').allTextContents();
    assert.ok(note.some((t) => /camera/i.test(t)), `a note about the camera: ${JSON.stringify(note)}`);
    assert.deepEqual(await banners(n), []);
    await n.page.screenshot({ path: artifact('call-no-camera.png') });

    // Neither camera nor microphone: Olga still joins, watches and listens, and is told so.
    const o = await openDevice(chromium, dev.http, room, 'olga', { name: 'Olga', init: `(${WATCH_BANNERS})(); (${NO_DEVICES})();` });
    const listens = await waitFor(async () => {
      const vo = await o.view();
      const fromAlice = vo.remote.filter((r) => r.device === a.device && r.kind === 'audio').map((r) => r.id);
      const frames = vo.recvTransforms.filter((t) => fromAlice.includes(t.id)).reduce((x, t) => x + t.frames, 0);
      return { ok: frames > 50 && vo.audioEnergy > 0, frames };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(listens.ok, JSON.stringify(listens));
    const olgaNote = await o.page.locator('.notice').allTextContents();
    assert.ok(olgaNote.some((t) => /watch and listen/.test(t)), JSON.stringify(olgaNote));
    assert.deepEqual(await banners(o), []);
    await o.context.close();

    // A join that fails after `joined` (its offer cannot be made): the page says so and the
    // room does not keep the device.
    const context = await chromium.newContext({ viewport: WINDOW });
    await context.addInitScript(OFFER_FAILS);
    const page = await context.newPage();
    await page.goto(`${dev.http}/?${new URLSearchParams({ room, name: 'Ghost', join: '1', test: '1' })}#token=${token(room, 'ghost')}`);
    await page.waitForSelector('.form-error', { timeout: 30_000 });
    const said = await page.locator('.form-error').textContent();
    assert.doesNotMatch(said, /\(\d+\)|OperationError/, `a sentence, not a code: ${said}`);
    const settled = await waitFor(async () => {
      const detail = await roomDetail(dev.http, room);
      const ps = await participants(a);
      const ok = detail.participants.length === 2 && ps.length === 2;
      return { ok, detail: detail.participants.map((p) => p.identity), ps };
    }, { timeoutMs: 10_000, intervalMs: 250 });
    assert.ok(settled.ok, `a ghost stayed: ${JSON.stringify(settled)}`);
    assert.deepEqual(settled.detail.sort(), ['alice', 'nadia']);
    assert.deepEqual(await banners(a), []);
    await context.close();
    for (const d of [a, n]) await d.context.close();
  });
});
