// The pre-join screen, the in-call device switch and the encryption badge, through the real
// service (`signaling dev` with its embedded SFU) in headless Chromium with fake devices
// (`--use-fake-device-for-media-stream`: one fake camera, fake microphones that beep).
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it. Screenshots go to artifacts/web/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { openDevice, serviceSkip, sleep, startDev, token, WINDOW } from './sfu-harness.mjs';
import { NO_CAMERA, WATCH_BANNERS } from './page-init.mjs';

/** A browser whose user refused the camera and microphone to the site. */
const BLOCKED = () => {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
};

/**
 * Holds every `key_envelope` this page receives until `window.__releaseKeys()`: the page then
 * sees the others publish before it has their keys. Wraps the WebSocket's `onmessage`, which is
 * how signaling-client.js listens.
 */
const HOLD_KEYS = () => {
  const Native = window.WebSocket;
  window.__held = [];
  window.__holding = true;
  window.__releaseKeys = () => {
    window.__holding = false;
    for (const deliver of window.__held.splice(0)) deliver();
  };
  window.WebSocket = class extends Native {
    set onmessage(fn) {
      super.onmessage = (e) => {
        let type = null;
        try {
          type = JSON.parse(e.data).type;
        } catch {
          // Not JSON: the client's own parser reports it.
        }
        if (window.__holding && type === 'key_envelope') window.__held.push(() => fn(e));
        else fn(e);
      };
    }

    get onmessage() {
      return super.onmessage;
    }
  };
};

const banners = (page) => page.evaluate(() => window.__banners ?? []);

/** Opens the page from an invitation link (room and token, no `join=1`): the pre-join screen. */
async function openPrejoin(chromium, http, room, identity, { name = identity, init = null, viewport = WINDOW } = {}) {
  const context = await chromium.newContext({ viewport });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ room, test: '1' });
  await page.goto(`${http}/?${q}#token=${token(room, identity)}&name=${encodeURIComponent(name)}`);
  await page.waitForSelector('form.prejoin-card');
  await page.waitForFunction(() => window.__prejoin?.state.phase === 'ready');
  return { context, page, errors, identity };
}

/** Presses Join on the pre-join screen and waits for the call. */
async function joinFromPrejoin(d) {
  await d.page.getByRole('button', { name: /^Join/ }).click();
  await d.page.waitForFunction(() => window.__call?.state.phase === 'in-call' || window.__call?.state.phase === 'error', null, { timeout: 30_000 });
  const failed = await d.page.evaluate(() => window.__call.state.error);
  assert.equal(failed, null, `${d.identity} could not join: ${JSON.stringify(failed)}`);
  d.device = await d.page.evaluate(() => window.__call.state.self.device);
  return d;
}

/** Audio frames this page decrypted from `device`'s microphone, and the audio energy it played. */
function heardFrom(page, device) {
  return page.evaluate(async (device) => {
    const c = window.__call;
    const ids = [...c.remote.receivers.values()].filter((r) => r.device === device && r.kind === 'audio').map((r) => r.id);
    const w = c.media ? await c.media.stats() : { transforms: [] };
    const frames = w.transforms.filter((t) => t.side === 'recv' && ids.includes(t.id)).reduce((s, t) => s + t.frames, 0);
    let energy = 0;
    (await c.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') energy += s.totalAudioEnergy ?? 0;
    });
    return { frames, energy };
  }, device);
}

/** What the top bar's encryption badge shows. */
const badge = (page) => page.evaluate(() => {
  const b = document.querySelector('.badge.e2ee');
  return b ? { state: b.dataset.state, text: b.textContent.trim() } : null;
});

describe('pre-join screen, device switch, encryption badge', { skip: serviceSkip() }, () => {
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

  test('prejoin_shows_preview_level_and_pickers', { timeout: 90_000 }, async () => {
    const room = `prejoin-${Date.now()}`;
    const d = await openPrejoin(chromium, dev.http, room, 'paula', { name: 'Paula', init: WATCH_BANNERS });
    const { page } = d;
    // The camera preview plays.
    const video = await waitFor(() => page.evaluate(() => {
      const v = document.querySelector('.preview-video');
      return { ok: !!v && !v.hidden && v.videoWidth > 0, width: v?.videoWidth ?? 0 };
    }), { timeoutMs: 10_000 });
    assert.ok(video.ok, JSON.stringify(video));
    // The level meter moves with the fake microphone's beeps (a meter, labelled).
    const meter = page.getByRole('meter', { name: 'Microphone level' });
    assert.equal(await meter.count(), 1);
    const level = await waitFor(() => page.evaluate(() => Number(document.querySelector('.level').dataset.peak ?? 0)), { timeoutMs: 10_000 });
    assert.ok(level > 0.01, `the meter moved: peak ${level}`);
    // Pickers, labelled, with the fake devices; a speaker picker where setSinkId exists.
    const pickers = await page.evaluate(() => Object.fromEntries(['camera', 'microphone', 'speaker'].map((n) => [n, [...(document.querySelector(`select[name=${n}]`)?.options ?? [])].map((o) => o.textContent)])));
    assert.ok(pickers.camera.length >= 1, JSON.stringify(pickers));
    assert.ok(pickers.microphone.length >= 1, JSON.stringify(pickers));
    const sink = await page.evaluate(() => typeof HTMLMediaElement.prototype.setSinkId === 'function');
    if (sink) assert.ok(pickers.speaker.length >= 1, `a speaker picker: ${JSON.stringify(pickers)}`);
    assert.equal(await page.getByLabel('Camera', { exact: true }).count(), 1, 'the camera picker has a label');
    assert.equal(await page.getByLabel('Microphone', { exact: true }).count(), 1, 'the microphone picker has a label');
    assert.equal(await page.getByRole('checkbox', { name: 'Join with camera off' }).count(), 1);
    assert.equal(await page.getByRole('checkbox', { name: 'Join with microphone off' }).count(), 1);
    await page.screenshot({ path: artifact('prejoin-1280.png') });

    // The same screen on a phone (390 px wide): nothing wider than the window.
    const phone = await d.context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${dev.http}/?room=${room}&test=1#token=${token(room, 'paula-phone')}&name=Paula`);
    await phone.waitForFunction(() => window.__prejoin?.state.phase === 'ready');
    await phone.waitForFunction(() => document.querySelector('.preview-video')?.videoWidth > 0);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 390, `no sideways scrolling on a phone: ${overflow}px`);
    await phone.screenshot({ path: artifact('prejoin-390.png'), fullPage: true });
    await phone.close();

    // Keyboard only: Tab from the camera picker reaches Join, Enter joins.
    await page.focus('select[name=camera]');
    let reached = false;
    for (let i = 0; i < 15 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.dataset?.action === 'join');
    }
    assert.ok(reached, 'Join is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__call?.state.phase === 'in-call', null, { timeout: 30_000 });
    const local = await page.evaluate(() => ({ ...window.__call.state.local, published: window.__call.publishedSources() }));
    assert.deepEqual([local.micOn, local.cameraOn, local.published], [true, true, ['microphone', 'camera']]);
    assert.deepEqual(await banners(page), []);
    assert.deepEqual(d.errors, []);
    await d.context.close();
  });

  test('lobby_continue_opens_prejoin_and_back_closes_the_devices', { timeout: 60_000 }, async () => {
    const room = `lobby-${Date.now()}`;
    const context = await chromium.newContext({ viewport: WINDOW });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // A link without a token: the lobby, which says how to get an invitation.
    await page.goto(`${dev.http}/?room=${room}&test=1#name=Lee`);
    assert.match(await page.textContent('.how-to-join'), /invitation link/);
    await page.fill('textarea[name=token]', token(room, 'lee'));
    await page.click('button[type=submit]');
    await page.waitForFunction(() => window.__prejoin?.state.phase === 'ready');
    assert.equal(await page.inputValue('.prejoin-card input[name=name]'), 'Lee');
    const live = await page.evaluate(() => window.__prejoin.stream.getTracks().map((t) => t.readyState));
    assert.deepEqual(live, ['live', 'live']);
    const tracks = await page.evaluateHandle(() => window.__prejoin.stream.getTracks());
    await page.getByRole('button', { name: 'Back to the lobby' }).click();
    await page.waitForSelector('form.lobby-card');
    assert.equal(await page.inputValue('input[name=room]'), room);
    assert.deepEqual(await tracks.evaluate((ts) => ts.map((t) => t.readyState)), ['ended', 'ended'], 'the devices are closed');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('page_without_test_mode_exposes_no_call_handle', { timeout: 60_000 }, async () => {
    const room = `plain-${Date.now()}`;
    const context = await chromium.newContext({ viewport: WINDOW });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // An invitation link without `test=1`: the pre-join screen (no network beyond the page).
    await page.goto(`${dev.http}/?room=${room}#token=${token(room, 'nia')}&name=Nia`);
    await page.waitForSelector('form.prejoin-card');
    const handles = await page.evaluate(() => ['call', 'prejoin', '__call', '__prejoin'].filter((k) => k in window));
    assert.deepEqual(handles, [], 'a page outside test mode puts no call or pre-join handle on window');
    // The same link with `test=1` does (the handle the browser tests use).
    await page.goto(`${dev.http}/?room=${room}&test=1#token=${token(room, 'nia')}&name=Nia`);
    await page.waitForFunction(() => window.__prejoin?.state.phase === 'ready');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('prejoin_permission_denied_says_what_to_do', { timeout: 60_000 }, async () => {
    const room = `blocked-${Date.now()}`;
    const d = await openPrejoin(chromium, dev.http, room, 'bea', { name: 'Bea', init: BLOCKED });
    const said = await d.page.locator('.prejoin-messages').textContent();
    assert.match(said, /may not use your camera and microphone/);
    assert.match(said, /set Camera and Microphone to Allow, then press Try again/);
    assert.equal(await d.page.getByRole('button', { name: 'Try again' }).isVisible(), true);
    assert.equal(await d.page.getByRole('button', { name: 'Join to watch and listen' }).isEnabled(), true, 'joining without devices stays possible');
    await d.page.screenshot({ path: artifact('prejoin-blocked.png') });
    assert.deepEqual(d.errors, []);
    await d.context.close();
  });

  test('join_with_camera_off_shows_initials_to_others', { timeout: 120_000 }, async () => {
    const room = `camoff-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS });
    const b = await openPrejoin(chromium, dev.http, room, 'bob', { name: 'Bob', init: WATCH_BANNERS });
    await b.page.getByRole('checkbox', { name: 'Join with camera off' }).check();
    await b.page.getByRole('checkbox', { name: 'Join with microphone off' }).check();
    // The preview shows initials instead of the picture, and says why.
    assert.equal(await b.page.locator('.preview-video').isHidden(), true);
    assert.match(await b.page.locator('.preview-note').textContent(), /Camera is off/);
    await joinFromPrejoin(b);
    const local = await b.page.evaluate(() => ({ ...window.__call.state.local, published: window.__call.publishedSources() }));
    assert.deepEqual([local.micOn, local.cameraOn, local.published], [false, false, ['microphone', 'camera']], 'joined muted with the camera off; both can be turned on');
    assert.match(await b.page.textContent('[data-ctl=camera]'), /Start video/);
    // Alice sees Bob's initials (not a black picture) and his muted mark.
    const seen = await waitFor(() => a.page.evaluate((device) => {
      const tile = document.querySelector(`.tile[data-device="${device}"]`);
      const p = window.__call.state.participants.get(device);
      return {
        ok: !!tile && !tile.classList.contains('has-video') && p?.videoOff === true && p?.audioMuted === true && !!tile.querySelector('.mark.muted'),
        initials: tile?.querySelector('.avatar')?.textContent,
        label: tile?.querySelector('.avatar')?.getAttribute('aria-label'),
      };
    }, b.device), { timeoutMs: 20_000 });
    assert.ok(seen.ok, JSON.stringify(seen));
    assert.equal(seen.initials, 'BO');
    assert.equal(seen.label, 'Bob: camera off');
    await a.page.screenshot({ path: artifact('prejoin-camera-off-seen.png') });
    // Bob turns his camera on in the call: Alice's tile shows his picture.
    await b.page.click('[data-ctl=camera]');
    const shown = await waitFor(() => a.page.evaluate((device) => document.querySelector(`.tile[data-device="${device}"]`)?.classList.contains('has-video'), b.device), { timeoutMs: 20_000 });
    assert.ok(shown, 'the picture appears once the camera is on');
    for (const d of [a, b]) assert.deepEqual(await banners(d.page), [], `${d.identity}: banners`);
    for (const d of [a, b]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b]) await d.context.close();
  });

  test('join_without_any_camera_is_audio_only', { timeout: 120_000 }, async () => {
    const room = `nocam-pre-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS });
    // Chromium's fake devices cannot be limited to none, so NO_CAMERA takes the camera away.
    const n = await openPrejoin(chromium, dev.http, room, 'nadia', { name: 'Nadia', init: `(${WATCH_BANNERS})(); (${NO_CAMERA})();` });
    assert.match(await n.page.locator('.preview-note').textContent(), /No camera found: you will join with audio only/);
    assert.equal(await n.page.isDisabled('select[name=camera]'), true);
    assert.equal(await n.page.locator('select[name=camera]').textContent(), 'No camera found');
    assert.equal(await n.page.locator('.prejoin-message').count(), 0, 'no error: a missing camera is not a problem');
    await n.page.screenshot({ path: artifact('prejoin-no-camera.png') });
    await joinFromPrejoin(n);
    const local = await n.page.evaluate(() => ({ ...window.__call.state.local, published: window.__call.publishedSources() }));
    assert.deepEqual([local.micOn, local.cameraOn, local.hasCamera, local.published], [true, false, false, ['microphone']]);
    assert.equal(await n.page.isDisabled('[data-ctl=camera]'), true);
    const heard = await waitFor(async () => {
      const h = await heardFrom(a.page, n.device);
      return { ok: h.frames > 50 && h.energy > 0, ...h };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(heard.ok, JSON.stringify(heard));
    for (const d of [a, n]) assert.deepEqual(await banners(d.page), [], `${d.identity}: banners`);
    for (const d of [a, n]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, n]) await d.context.close();
  });

  test('switch_microphone_during_the_call_keeps_the_call', { timeout: 120_000 }, async () => {
    const room = `switch-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', init: WATCH_BANNERS });
    const first = await waitFor(async () => {
      const h = await heardFrom(a.page, b.device);
      return { ok: h.frames > 50, ...h };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(first.ok, JSON.stringify(first));
    // Count what Bob's page sends from now on: a switch must not renegotiate.
    const before = await b.page.evaluate(() => {
      const c = window.__call;
      window.__sent = [];
      const send = c.signaling.send.bind(c.signaling);
      c.signaling.send = (m) => {
        window.__sent.push(m.type);
        return send(m);
      };
      window.__oldMic = c.local.mic;
      return { track: c.local.mic.id, sdp: c.pc.localDescription.sdp };
    });
    await b.page.click('[data-ctl=devices]');
    // The panel reads the device list when it opens; until then the picker is disabled.
    await b.page.waitForSelector('select[name=microphone]:not([disabled])');
    const options = await b.page.$$eval('select[name=microphone] option', (os) => os.map((o) => ({ value: o.value, selected: o.selected })));
    assert.ok(options.length >= 1, JSON.stringify(options));
    // Another fake microphone where there is one; else the same device again, which still
    // opens a new track and replaces the old one on the sender.
    const pick = options.find((o) => !o.selected) ?? options[0];
    await b.page.selectOption('select[name=microphone]', pick.value);
    const switched = await waitFor(() => b.page.evaluate((oldId) => {
      const c = window.__call;
      const sender = c.senderOf('microphone');
      return {
        ok: c.local.mic.id !== oldId && sender.track === c.local.mic && window.__oldMic.readyState === 'ended',
        phase: c.state.phase,
        newTrack: c.local.mic.id,
        device: c.local.mic.getSettings().deviceId,
      };
    }, before.track), { timeoutMs: 10_000 });
    assert.ok(switched.ok, JSON.stringify(switched));
    assert.equal(switched.phase, 'in-call');
    // Audio keeps flowing to Alice after the switch, with no new offer from Bob.
    const after = await waitFor(async () => {
      const h = await heardFrom(a.page, b.device);
      return { ok: h.frames > first.frames + 100 && h.energy > first.energy, ...h };
    }, { timeoutMs: 20_000, intervalMs: 500 });
    assert.ok(after.ok, JSON.stringify({ first, after }));
    const sent = await b.page.evaluate(() => window.__sent);
    assert.ok(!sent.includes('offer'), `no renegotiation: ${sent.join(',')}`);
    assert.equal(await b.page.evaluate(() => window.__call.pc.localDescription.sdp), before.sdp);
    // The speaker picker routes the remote audio (setSinkId) where the browser can.
    const speakers = await b.page.$$eval('select[name=speaker] option', (os) => os.map((o) => o.value).filter(Boolean));
    const canRoute = await b.page.evaluate(() => typeof HTMLMediaElement.prototype.setSinkId === 'function');
    assert.ok(!canRoute || speakers.length > 0, 'a speaker picker where setSinkId exists');
    if (speakers.length) {
      await b.page.selectOption('select[name=speaker]', speakers.at(-1));
      const routed = await waitFor(() => b.page.evaluate((id) => {
        const sinks = [...document.querySelectorAll('.audio-sinks audio')].map((a) => a.sinkId);
        return { ok: window.__call.state.speaker === id && sinks.length > 0 && sinks.every((x) => x === id), sinks };
      }, speakers.at(-1)), { timeoutMs: 5000 });
      assert.ok(routed.ok, JSON.stringify(routed));
    }
    await b.page.screenshot({ path: artifact('devices-panel.png') });
    for (const d of [a, b]) assert.deepEqual(await banners(d.page), [], `${d.identity}: banners`);
    for (const d of [a, b]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b]) await d.context.close();
  });

  test('badge_waits_for_keys_then_shows_encrypted', { timeout: 120_000 }, async () => {
    const room = `badge-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: HOLD_KEYS });
    // Alone, with her own key: encrypted.
    const alone = await waitFor(async () => (await badge(a.page))?.state === 'encrypted', { timeoutMs: 10_000 });
    assert.ok(alone, JSON.stringify(await badge(a.page)));
    // Bob joins and publishes; his key envelopes to Alice are held: Alice waits for keys.
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    const waiting = await waitFor(async () => {
      const s = await badge(a.page);
      const held = await a.page.evaluate(() => window.__held.length);
      return { ok: s?.state === 'waiting' && held > 0, s, held };
    }, { timeoutMs: 20_000 });
    assert.ok(waiting.ok, JSON.stringify(waiting));
    assert.equal(waiting.s.text, 'Waiting for keys');
    // Bob's frames arrive and fail meanwhile (no key): still waiting, never "fail to decrypt".
    await sleep(4000);
    const still = await badge(a.page);
    assert.equal(still.state, 'waiting', JSON.stringify(still));
    assert.equal((await heardFrom(a.page, b.device)).frames, 0, 'nothing opened without the key');
    await a.page.screenshot({ path: artifact('badge-waiting.png') });
    // The keys are delivered: Bob's frames open and the badge turns green.
    await a.page.evaluate(() => window.__releaseKeys());
    const green = await waitFor(async () => {
      const s = await badge(a.page);
      const h = await heardFrom(a.page, b.device);
      return { ok: s?.state === 'encrypted' && h.frames > 20, s, h };
    }, { timeoutMs: 20_000, intervalMs: 500 });
    assert.ok(green.ok, JSON.stringify(green));
    assert.equal(green.s.text, 'End-to-end encrypted');
    // And it stays green (the failures from before the key are no warning).
    await sleep(4000);
    assert.equal((await badge(a.page)).state, 'encrypted');
    assert.equal((await badge(b.page)).state, 'encrypted');
    await a.page.screenshot({ path: artifact('badge-encrypted.png') });
    for (const d of [a, b]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b]) await d.context.close();
  });

  test('badge_names_a_sender_whose_frames_fail_to_decrypt', { timeout: 120_000 }, async () => {
    const room = `badfail-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    const green = await waitFor(async () => {
      const s = await badge(a.page);
      return { ok: s?.state === 'encrypted' && (await heardFrom(a.page, b.device)).frames > 50, s };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(green.ok, JSON.stringify(green));
    // Alice's worker is given a wrong key for Bob's current generation and step (as a broken or
    // lying key exchange would): his frames stop opening, and the badge names him.
    await a.page.evaluate((device) => {
      const c = window.__call;
      const k = c.keys.received.get(device);
      const slot = c.state.participants.get(device).slot;
      c.media.addReceiverKey({ slot, generation: k.generation, step: k.step, suite: c.keys.suite, baseKey: crypto.getRandomValues(new Uint8Array(64)) });
    }, b.device);
    const failing = await waitFor(async () => {
      const s = await badge(a.page);
      return { ok: s?.state === 'failing', s };
    }, { timeoutMs: 15_000, intervalMs: 250 });
    assert.ok(failing.ok, JSON.stringify(failing));
    assert.equal(failing.s.text, 'Frames from Bob fail to decrypt');
    // A warning state of the badge, not a banner; Bob's own badge is unaffected.
    assert.equal((await badge(b.page)).state, 'encrypted');
    await a.page.screenshot({ path: artifact('badge-failing-live.png') });
    for (const d of [a, b]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b]) await d.context.close();
  });

  test('security_code_change_notice_names_who_joined', { timeout: 120_000 }, async () => {
    const room = `code-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', init: WATCH_BANNERS });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', init: WATCH_BANNERS });
    const notice = (page) => page.evaluate(() => [...document.querySelectorAll('.notice.security-code')].map((n) => n.textContent.replace('×', '').trim()));
    const codeOf = (page) => page.evaluate(() => window.__call.state.securityCode);
    const bobJoined = await waitFor(async () => {
      const n = await notice(a.page);
      return { ok: n.length === 1 && n[0] === 'Bob joined — the security code changed; compare it again', n };
    }, { timeoutMs: 10_000 });
    assert.ok(bobJoined.ok, JSON.stringify(bobJoined));
    assert.deepEqual(await notice(b.page), [], 'Bob joined; his own first code is no change');
    const codeAB = await codeOf(a.page);
    // Carol joins: both see her named, the latest notice replacing the earlier one.
    const c = await openDevice(chromium, dev.http, room, 'carol', { name: 'Carol', init: WATCH_BANNERS });
    const carolJoined = await waitFor(async () => {
      const [na, nb] = await Promise.all([notice(a.page), notice(b.page)]);
      const want = 'Carol joined — the security code changed; compare it again';
      return { ok: na.length === 1 && na[0] === want && nb.length === 1 && nb[0] === want, na, nb };
    }, { timeoutMs: 10_000 });
    assert.ok(carolJoined.ok, JSON.stringify(carolJoined));
    const codes = await Promise.all([a, b, c].map((d) => codeOf(d.page)));
    assert.notEqual(codes[0], codeAB, 'the code changed');
    assert.ok(codes.every((x) => x === codes[0]), 'everyone sees the same new code');
    // A calm notice (a status), not a warning banner.
    assert.equal(await a.page.locator('.notices[role=status] .notice.security-code').count(), 1);
    assert.equal(await a.page.locator('.warning').count(), 0);
    await a.page.screenshot({ path: artifact('security-code-notice.png') });
    // Carol leaves: named too.
    await c.page.evaluate(() => window.__call.leave());
    const carolLeft = await waitFor(async () => {
      const n = await notice(a.page);
      return { ok: n[0] === 'Carol left — the security code changed; compare it again', n };
    }, { timeoutMs: 10_000 });
    assert.ok(carolLeft.ok, JSON.stringify(carolLeft));
    for (const d of [a, b, c]) assert.deepEqual(await banners(d.page), [], `${d.identity}: banners`);
    for (const d of [a, b, c]) assert.deepEqual(d.errors, [], `${d.identity}: page errors`);
    for (const d of [a, b, c]) await d.context.close();
  });
});
