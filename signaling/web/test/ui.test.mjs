// The call UI in headless Chromium: the real page modules draw test scenes (a made-up roster
// with real identities, security code and safety numbers); the test checks what is on screen and
// saves screenshots under artifacts/web/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launch, openPage, serveStatic, SKIP } from './harness.mjs';

describe('web client UI in chromium', { skip: SKIP }, () => {
  let server;
  let browser;
  before(async () => {
    server = await serveStatic();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function scene(query) {
    const { page, errors } = await openPage(browser.context, `${server.url}/test/pages/ui-demo.html?${query}`);
    await page.waitForFunction(() => window.sceneReady, null, { timeout: 15_000 });
    const failure = await page.evaluate(() => window.sceneError ?? null);
    assert.equal(failure, null);
    await page.waitForTimeout(400); // let videos start
    return { page, errors, info: await page.evaluate(() => window.sceneInfo) };
  }

  test('lobby: the real page at / shows the join form', { timeout: 20_000 }, async () => {
    const { page, errors } = await openPage(browser.context, `${server.url}/?room=standup#name=Robin`);
    await page.waitForSelector('form.lobby-card');
    assert.equal(await page.inputValue('input[name=room]'), 'standup');
    assert.equal(await page.inputValue('input[name=name]'), 'Robin');
    assert.equal(await page.isDisabled('button[type=submit]'), false, 'encoded transforms are supported');
    // A link without a token says how to get one.
    assert.match(await page.textContent('.how-to-join'), /invitation link .* from whoever runs the call/);
    // The device identity was created and kept in IndexedDB, with non-extractable private keys.
    const id = await page.evaluate(async () => {
      const { IdentityStore } = await import('/identity-store.js');
      const store = await IdentityStore.open();
      const a = await store.deviceIdentity();
      const b = await (await IdentityStore.open()).deviceIdentity();
      let exported = 'exported';
      try { await crypto.subtle.exportKey('pkcs8', a.identity.privateKey); } catch (e) { exported = e.name; }
      return { same: a.deviceId === b.deviceId, extractable: a.identity.privateKey.extractable || a.hpke.privateKey.extractable, exported };
    });
    assert.deepEqual(id, { same: true, extractable: false, exported: 'InvalidAccessError' });
    // Pins: first sight, same key, verified mark kept across reopening, changed key clears it.
    const pins = await page.evaluate(async () => {
      const { IdentityStore } = await import('/identity-store.js');
      const k1 = crypto.getRandomValues(new Uint8Array(32));
      const k2 = crypto.getRandomValues(new Uint8Array(32));
      const s1 = await IdentityStore.open();
      const out = [await s1.observe('bob', 'dev-b', k1)];
      await s1.setVerified('bob', 'dev-b', k1, true);
      const s2 = await IdentityStore.open();
      out.push(await s2.observe('bob', 'dev-b', k1), await s2.observe('bob', 'dev-b', k2), await s2.observe('bob', 'dev-b', k2));
      return out;
    });
    assert.deepEqual(pins, [
      { result: 'new', verified: false },
      { result: 'same', verified: true },
      { result: 'changed', verified: false },
      { result: 'same', verified: false },
    ]);
    await page.screenshot({ path: artifact('lobby.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('grid: names, active speaker, "N more" beyond the visible tiles, security code, recorded badge, key-change warning', { timeout: 30_000 }, async () => {
    const { page, errors, info } = await scene('n=9&tiles=8&recorded=1&changed=2&failures=0');
    const tiles = await page.$$eval('.grid .tile:not(.more)', (els) => els.map((e) => ({ name: e.querySelector('.name').textContent, video: e.classList.contains('has-video'), speaking: e.classList.contains('speaking') })));
    assert.equal(tiles.length, 7, 'visible tiles minus one for "+N more"');
    assert.equal(tiles.filter((t) => t.speaking).length, 1);
    assert.ok(tiles.some((t) => t.speaking), 'the active speaker is in view');
    assert.match(tiles[0].name, /\(you\)/, 'this device comes first (tile order is join order, tile-order.js)');
    assert.equal(await page.textContent('.tile.more .more-label'), '3 more');
    assert.ok(!tiles.some((t) => t.name.includes('Compliance recorder')), 'the recorder has no tile');
    assert.equal(await page.textContent('.badge.recorded'), 'Recorded · kept 90 days', 'the badge shows the signed retention');
    assert.match(await page.textContent('.warning.key-changed'), /Chen Wei's identity key changed/);
    const chip = await page.textContent('.code-chip');
    assert.equal(chip.replace(/\s/g, ''), info.securityCode);
    assert.match(await page.textContent('.tile[data-device="dev-alice"] .fail-count'), /37/, 'the tile indicator counts decrypt failures');
    await page.screenshot({ path: artifact('grid.png') });
    // Mute and camera off: the controls and the own tile follow.
    await page.click('[data-ctl=mic]');
    await page.click('[data-ctl=camera]');
    // Each click redraws on the next animation frame: wait for both controls' new state.
    await page.waitForSelector('[data-ctl=mic][aria-pressed=false]');
    await page.waitForSelector('[data-ctl=camera][aria-pressed=false]');
    await page.waitForSelector('.tile.self:not(.has-video)');
    assert.match(await page.textContent('[data-ctl=mic]'), /Unmute/);
    assert.match(await page.textContent('[data-ctl=camera]'), /Start video/);
    assert.equal(await page.locator('.tile.self.has-video').count(), 0);
    assert.equal(await page.locator('.tile.self .mark.muted').count(), 1);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('security panel: call code, safety number on demand, verified mark', { timeout: 30_000 }, async () => {
    const { page, errors, info } = await scene('n=4&panel=security&recorded=1&changed=1');
    const code = (await page.textContent('.security-panel .code')).replace(/\s/g, '');
    assert.equal(code, info.securityCode);
    assert.equal(code.length, 25);
    assert.match(await page.textContent('.recorded-card'), /Compliance|rec-1/);
    assert.match(await page.textContent('.recorded-card'), /kept 90 days/);
    assert.match(await page.textContent('.person.changed'), /Key changed/);
    const alice = page.locator('.person[data-device="dev-alice"]');
    await alice.locator('.person-row button.link').click();
    await page.waitForSelector('.person[data-device="dev-alice"] .safety-number', { timeout: 10_000 });
    const groups = await page.$$eval('.person[data-device="dev-alice"] .safety-number span', (s) => s.map((x) => x.textContent));
    assert.equal(groups.length, 12);
    assert.ok(groups.every((g) => /^\d{5}$/.test(g)));
    // The same number as computed independently in the page from both identities.
    const expected = await page.evaluate(() => window.sceneCall.safetyNumberWith('dev-alice'));
    assert.equal(groups.join(' '), expected);
    await page.locator('.person[data-device="dev-alice"] .safety button.primary').click();
    await page.waitForSelector('.person[data-device="dev-alice"] .pill.ok');
    await page.screenshot({ path: artifact('security-panel.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('quality panel and pinned screen share on the stage', { timeout: 30_000 }, async () => {
    const { page, errors } = await scene('n=5&panel=quality&screen=1&failures=3');
    assert.match(await page.textContent('.quality-panel'), /Decrypt failures/);
    assert.equal(await page.locator('.quality-panel .stat.bad .stat-value').first().textContent(), '37');
    const rows = await page.$$eval('.quality-panel tbody tr', (r) => r.map((x) => x.textContent));
    assert.ok(rows.some((r) => r.includes('high') || r.includes('medium')), rows.join('|'));
    assert.ok(await page.locator('.stage .tile.screen').count() === 1, 'the screen share is on the stage');
    assert.ok((await page.locator('.tile-quality .fail-count').count()) >= 1, 'the tile indicator shows decrypt failures');
    await page.screenshot({ path: artifact('quality-panel.png') });
    // Pin someone else: the stage shows the pinned tile.
    await page.evaluate(() => window.sceneCall.pin('dev-dana'));
    await page.waitForSelector('.stage .tile.pinned[data-device="dev-dana"]');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('encryption badge: green when frames from every sender open, waiting for keys, a warning naming who fails', { timeout: 30_000 }, async () => {
    const states = {};
    for (const kind of ['open', 'waiting', 'failing']) {
      const { page, errors } = await scene(`n=4&badge=${kind}`);
      const b = page.locator('.badge.e2ee');
      states[kind] = { state: await b.getAttribute('data-state'), text: await b.textContent(), role: await b.getAttribute('role') };
      if (kind === 'failing') await page.screenshot({ path: artifact('badge-failing.png') });
      assert.deepEqual(errors, []);
      await page.close();
    }
    assert.deepEqual(states, {
      open: { state: 'encrypted', text: 'End-to-end encrypted', role: 'status' },
      waiting: { state: 'waiting', text: 'Waiting for keys', role: 'status' },
      failing: { state: 'failing', text: 'Frames from Alice Martin fail to decrypt', role: 'status' },
    });
  });

  test('broadcast viewer: watch only, no publishing controls', { timeout: 30_000 }, async () => {
    const { page, errors } = await scene('n=2&watch=1&screen=0');
    assert.equal(await page.locator('[data-ctl=mic]').count(), 0);
    assert.equal(await page.locator('[data-ctl=camera]').count(), 0);
    assert.equal(await page.locator('[data-ctl=screen]').count(), 0);
    assert.equal(await page.locator('[data-ctl=leave]').count(), 1);
    assert.match(await page.textContent('.badge.viewer'), /Watching/);
    assert.equal(await page.locator('.tile.self').count(), 0, 'a viewer has no tile of its own');
    await page.screenshot({ path: artifact('viewer.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
