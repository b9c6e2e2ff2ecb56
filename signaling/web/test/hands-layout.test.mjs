// Raise hand, reactions and the speaker view on a ui-demo scene (the real CallView and Grid, a
// made-up roster, no server): they fit a 390-px phone, in the grid and in the speaker view,
// with every control visible and named. Screenshots go to artifacts/web/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launch, openPage, serveStatic, SKIP } from './harness.mjs';

describe('hands, reactions and views on a phone', { skip: SKIP }, () => {
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

  test('hands_reactions_and_speaker_view_fit_a_390px_phone', { timeout: 40_000 }, async () => {
    const { page, errors } = await openPage(browser.context, `${server.url}/test/pages/ui-demo.html?n=4&hands=1`);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => window.sceneReady, null, { timeout: 15_000 });
    assert.equal(await page.evaluate(() => window.sceneError ?? null), null);
    const fits = () => page.evaluate(() => {
      const outside = [];
      for (const el of document.querySelectorAll('.controls button, .topbar button, .hand-queue, .grid .tile, .stage .tile')) {
        const r = el.getBoundingClientRect();
        if (r.width && (r.left < 0 || r.right > 390)) outside.push(el.dataset.ctl ?? el.className);
      }
      return { scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth), outside };
    });
    await page.waitForSelector('.tile .mark.hand');
    await page.waitForSelector('.tile-reactions .reaction');
    const grid = await fits();
    assert.ok(grid.scroll <= 390, `no horizontal scroll: ${grid.scroll}`);
    assert.deepEqual(grid.outside, []);
    for (const ctl of ['hand', 'react', 'view', 'mic', 'leave']) assert.ok(await page.locator(`[data-ctl=${ctl}]`).isVisible(), `${ctl} visible`);
    assert.equal(await page.getAttribute('[data-ctl=hand]', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('[data-ctl=hand]', 'aria-label'), 'Lower hand, 2 hands raised');
    assert.equal(await page.locator('.hand-queue .hand-entry').count(), 2);
    // The picker opens above the controls, within the screen, and Escape closes it.
    await page.click('[data-ctl=react]');
    const picker = await page.evaluate(() => [...document.querySelectorAll('.reaction-picker button')].map((b) => { const r = b.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.right)]; }));
    assert.equal(picker.length, 6);
    assert.ok(picker.every(([l, r]) => l >= 0 && r <= 390), `the six reactions on screen: ${JSON.stringify(picker)}`);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.reaction), '👍', 'the first reaction has the focus');
    await page.screenshot({ path: artifact('narrow-390-hands.png') });
    await page.keyboard.press('Escape');
    assert.equal(await page.isVisible('.reaction-picker'), false);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.ctl), 'react');

    await page.click('[data-ctl=view]');
    await page.waitForSelector('.stage-area.speaker-view .stage .tile');
    const speaker = await fits();
    assert.ok(speaker.scroll <= 390, `no horizontal scroll in speaker view: ${speaker.scroll}`);
    assert.deepEqual(speaker.outside, []);
    await page.screenshot({ path: artifact('narrow-390-speaker.png') });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
