// The in-call page's layout and keyboard use on ui-demo scenes (the real CallView and Grid, a
// made-up roster, no server): a stable tile order while the speaker changes, a 390-px phone
// layout, focus kept across redraws and every control reachable with Tab. Screenshots go to
// artifacts/web/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launch, openPage, serveStatic, SKIP } from './harness.mjs';
import { MOVE_INTERVAL_MS } from '../tile-order.js';

describe('in-call layout in chromium', { skip: SKIP }, () => {
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

  async function scene(query, viewport = null) {
    const { page, errors } = await openPage(browser.context, `${server.url}/test/pages/ui-demo.html?${query}`);
    if (viewport) await page.setViewportSize(viewport);
    await page.waitForFunction(() => window.sceneReady, null, { timeout: 15_000 });
    assert.equal(await page.evaluate(() => window.sceneError ?? null), null);
    await page.waitForTimeout(300);
    return { page, errors };
  }

  const gridOrder = (page) => page.$$eval('.grid .tile:not(.more)', (els) => els.map((e) => e.dataset.device));
  const hiddenNames = (page) => page.$$eval('.grid .tile.more', (els) => els.map((e) => e.title));
  /** Lets the page draw (the view redraws on the next animation frame). */
  const frames = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

  test('tile_order_is_stable_while_speakers_change', { timeout: 30_000 }, async () => {
    const { page, errors } = await scene('n=9&tiles=8');
    const before = await gridOrder(page);
    assert.equal(before.length, 7, 'seven tiles and "+N more"');
    assert.equal(before[0], 'dev-self', 'this device first');
    // Count every change to the grid's children from here on.
    await page.evaluate(() => {
      window.__gridMoves = 0;
      new MutationObserver((records) => { window.__gridMoves += records.length; }).observe(document.querySelector('.grid'), { childList: true });
    });
    // Speakers in view change five times a second for two seconds: nothing moves.
    const inView = before.slice(1);
    for (let i = 0; i < 10; i++) {
      await page.evaluate((d) => window.sceneCall.speak(d), inView[i % inView.length]);
      await page.waitForTimeout(200);
      assert.deepEqual(await gridOrder(page), before, `order after speaker change ${i + 1}`);
      assert.equal(await page.locator(`.grid .tile.active[data-device="${inView[i % inView.length]}"]`).count(), 1, 'the speaker is highlighted in place');
    }
    assert.equal(await page.evaluate(() => window.__gridMoves), 0, 'the grid DOM was not touched');
    // An off-screen speaker comes into view in the last visible place; the others stay.
    const offScreen = (await page.evaluate(() => [...window.sceneCall.state.participants.keys()])).filter((d) => !before.includes(d) && d !== 'rec-1');
    assert.ok(offScreen.length >= 2, `off-screen: ${offScreen}`);
    await page.evaluate((d) => window.sceneCall.speak(d), offScreen[0]);
    await frames(page);
    const moved = await gridOrder(page);
    assert.deepEqual(moved, [...before.slice(0, 6), offScreen[0]]);
    // A second off-screen speaker within the interval does not move anything yet …
    await page.evaluate((d) => window.sceneCall.speak(d), offScreen[1]);
    await page.waitForTimeout(MOVE_INTERVAL_MS / 2);
    assert.deepEqual(await gridOrder(page), moved, 'at most one move per interval');
    // … and moves once the interval has passed (the next redraw after it).
    await page.waitForTimeout(MOVE_INTERVAL_MS / 2 + 200);
    await page.evaluate((d) => window.sceneCall.speak(d), offScreen[1]);
    await frames(page);
    assert.deepEqual(await gridOrder(page), [...before.slice(0, 6), offScreen[1]]);
    assert.match((await hiddenNames(page))[0], /\w/, 'the "+N more" tile names who is off-screen');
    await page.screenshot({ path: artifact('tile-order.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('narrow_390px_layout_fits', { timeout: 30_000 }, async () => {
    const { page, errors } = await scene('n=4&panel=security&recorded=1&changed=1', { width: 390, height: 844 });
    await page.waitForSelector('.security-panel .code');
    const layout = await page.evaluate(() => {
      const out = [];
      for (const sel of ['.topbar', '.topbar button', '.topbar .badge', '.controls', '.controls button', '.security-panel', '.security-panel button', '.security-panel .code', '.grid .tile', '.warning']) {
        for (const el of document.querySelectorAll(sel)) {
          const r = el.getBoundingClientRect();
          if (r.width === 0 && r.height === 0) continue;
          out.push({ sel, left: Math.round(r.left), right: Math.round(r.right), text: el.textContent.trim().slice(0, 30) });
        }
      }
      return { scrollWidth: document.documentElement.scrollWidth, bodyScroll: document.body.scrollWidth, boxes: out };
    });
    assert.ok(layout.scrollWidth <= 390 && layout.bodyScroll <= 390, `no horizontal scroll: ${layout.scrollWidth}/${layout.bodyScroll}`);
    const outside = layout.boxes.filter((b) => b.left < 0 || b.right > 390);
    assert.deepEqual(outside, [], 'everything within 390 px');
    for (const sel of ['.topbar', '.controls', '.security-panel', '.controls button', '.topbar button', '.security-panel .code']) {
      assert.ok(layout.boxes.some((b) => b.sel === sel), `${sel} is on screen`);
    }
    // Every control button is visible and can be pressed (not covered, not zero-sized).
    for (const ctl of ['mic', 'camera', 'screen', 'security', 'quality', 'devices', 'leave']) {
      assert.ok(await page.locator(`[data-ctl=${ctl}]`).isVisible(), `${ctl} visible`);
    }
    // Icon-only at this width: each control keeps its name for screen readers.
    for (const name of ['Mute', 'Stop video', 'Share screen', 'Security', 'Quality', 'Devices', 'Leave']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 1, `a button named ${name}`);
    }
    await page.screenshot({ path: artifact('narrow-390-security.png') });
    // The same width with a screen share on the stage and no panel.
    await page.evaluate(() => window.sceneView.togglePanel('security', window.sceneCall.state));
    await page.goto(`${server.url}/test/pages/ui-demo.html?n=5&screen=1`);
    await page.waitForFunction(() => window.sceneReady);
    await page.waitForSelector('.stage .tile.screen');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scroll with a screen share: ${width}`);
    await page.screenshot({ path: artifact('narrow-390-screen.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });

  // A pinned tile in a short window keeps a height: the stage used to shrink to 0 px under the
  // filmstrip (480×360 with a notice open), the view reported the pinned tile 0 px tall, and the
  // call asked the SFU for no video of the pinned participant (simulcast-climb.test.mjs froze).
  test('pinned_tile_keeps_a_height_in_a_short_window', { timeout: 30_000 }, async () => {
    for (const viewport of [{ width: 480, height: 300 }, { width: 480, height: 360 }]) {
      const { page, errors } = await scene('n=3&pinned=0', viewport);
      const m = await page.evaluate(() => ({
        tile: document.querySelector('.stage .tile')?.clientHeight ?? 0,
        area: document.querySelector('.stage-area')?.clientHeight ?? 0,
      }));
      assert.ok(m.area > 0, `the stage area is drawn at ${JSON.stringify(viewport)}`);
      assert.ok(m.tile >= m.area * 0.4, `the pinned tile keeps most of the stage area at ${JSON.stringify(viewport)}: ${JSON.stringify(m)}`);
      assert.deepEqual(errors, []);
      await page.close();
    }
  });

  test('focus_is_kept_across_redraws', { timeout: 40_000 }, async () => {
    const { page, errors } = await scene('n=5&panel=security&changed=1');
    const focused = () => page.evaluate(() => {
      const el = document.activeElement;
      return el && el !== document.body ? (el.dataset.ctl ?? el.dataset.focus ?? el.getAttribute('aria-label') ?? el.textContent.trim()) : null;
    });
    /** Redraws the page several ways: speaker changes, quality, someone joining and leaving. */
    const redraw = async () => {
      const devices = await page.evaluate(() => [...window.sceneCall.state.participants.keys()]);
      for (const d of devices.slice(1, 5)) {
        await page.evaluate((x) => window.sceneCall.speak(x), d);
        await frames(page);
      }
      await page.evaluate(() => {
        const s = window.sceneCall.state;
        s.quality = { ...s.quality, level: s.quality.level === 'good' ? 'fair' : 'good' };
        window.sceneCall.addPerson('dev-zoe', 'Zoe Young');
      });
      await frames(page);
      await page.evaluate(() => window.sceneCall.removePerson('dev-zoe'));
      await frames(page);
    };
    const targets = [
      ['[data-ctl=mic]', 'mic'],
      ['.code-chip', 'code-chip'],
      ['.quality-chip', 'quality-chip'],
      ['.tile[data-device="dev-bogdan"] .pin', 'pin:dev-bogdan'],
      ['.warning .close', 'Dismiss'],
      ['[data-ctl=leave]', 'leave'],
    ];
    for (const [selector, expected] of targets) {
      await page.focus(selector);
      assert.equal(await focused(), expected);
      await redraw();
      assert.equal(await focused(), expected, `focus on ${selector} kept across redraws`);
    }
    // A button inside the security panel (its rows are redrawn) keeps focus too.
    const panelButton = page.locator('.security-panel .person[data-device="dev-chen"] button').first();
    const label = (await panelButton.textContent()).trim();
    await panelButton.focus();
    await redraw();
    assert.equal(await focused(), label, 'a security panel button keeps focus');
    // Tab from the top reaches every control of the top bar, the tiles and the control bar.
    await page.evaluate(() => document.activeElement?.blur());
    const everyControl = await page.$$eval('.topbar button, .grid .tile .pin, .controls button, .warning button, .security-panel button', (els) =>
      els.filter((e) => !e.disabled && e.getClientRects().length).map((e) => e.dataset.ctl ?? e.dataset.focus ?? e.getAttribute('aria-label') ?? e.textContent.trim()));
    const reached = new Set();
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      const f = await focused();
      if (f) reached.add(f);
    }
    const missed = everyControl.filter((c) => !reached.has(c));
    assert.deepEqual(missed, [], `Tab reaches every control (reached ${[...reached].join(', ')})`);
    // Pin buttons say whose tile they pin, for screen readers.
    assert.equal(await page.getAttribute('.tile[data-device="dev-bogdan"] .pin', 'aria-label'), 'Pin Bogdan Petrov');
    assert.equal(await page.getAttribute('.tile[data-device="dev-bogdan"]', 'aria-label'), 'Bogdan Petrov');
    assert.match(await page.getAttribute('.code-chip', 'aria-label'), /^Call security code \d{5}/);
    await page.focus('.tile[data-device="dev-bogdan"] .pin');
    await page.screenshot({ path: artifact('focus-pin.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
