// The in-call page through the real service (`signaling dev` with its embedded SFU) in headless
// Chromium with fake devices: a screen share beside the presenter's camera and the stage going
// back when it stops (asked for with `publish` / `unpublish`: the page never offers after its
// first answer); join and leave notices and the "only one here" card.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it. Screenshots go to artifacts/web/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, picture, serviceSkip, startDev } from './sfu-harness.mjs';

/** The value of one series on the service's `/metrics`. */
async function counter(http, series) {
  const text = await (await fetch(`${http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `${series} on /metrics`);
  return Number(line.split(' ')[1]);
}

/** What page `page` shows of `device`'s screen share and camera. */
function shownOf(page, device) {
  return page.evaluate((device) => {
    const p = window.__call.state.participants.get(device);
    const stage = document.querySelector('.stage .tile.screen');
    const stageVideo = stage?.querySelector('video');
    const tile = document.querySelector(`.grid .tile[data-device="${device}"]`);
    const tileTrack = tile?.querySelector('video')?.srcObject?.getVideoTracks()[0] ?? null;
    const screenId = p?.screenTrack?.id ?? null;
    // Any video element on the page still holding a screen track: a frozen last frame.
    const screenVideos = [...document.querySelectorAll('video')].filter((v) => {
      const t = v.srcObject?.getVideoTracks?.()[0];
      return t && (t.id === screenId || v.closest('.tile.screen'));
    }).length;
    return {
      stage: !!stage,
      label: stage?.textContent.trim() ?? null,
      stageWidth: stageVideo?.videoWidth ?? 0,
      tile: !!tile,
      tileVideo: !!tile?.classList.contains('has-video'),
      tileShowsCamera: !!tileTrack && tileTrack === p?.videoTrack,
      withStage: document.querySelector('.stage-area').classList.contains('with-stage'),
      screenVideos,
      screenTrack: p?.screenTrack ? `${p.screenTrack.id} ${p.screenTrack.readyState}` : null,
      screenOn: p?.screenOn ?? null,
    };
  }, device);
}

describe('screen share stage, join and leave notices', { skip: serviceSkip() }, () => {
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

  test('screen_share_keeps_the_presenters_camera_and_the_stage_returns', { timeout: 120_000 }, async () => {
    const room = `share-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    try {
      // Bob sees Alice's camera first.
      const camera = await waitFor(async () => decodedFrom(await b.view(), a.device) > 10, { timeoutMs: 30_000 });
      assert.ok(camera, 'bob decodes alice\'s camera');
      // Alice shares (headless Chromium picks a screen by itself with the fake UI).
      await a.page.evaluate(() => window.__call.setScreen(true));
      const sharing = await waitFor(async () => {
        const s = await shownOf(b.page, a.device);
        return { ok: s.stage && s.stageWidth > 0 && s.tileVideo && s.tileShowsCamera, ...s };
      }, { timeoutMs: 30_000 });
      assert.ok(sharing.ok, `bob sees alice's screen on the stage and her camera tile: ${JSON.stringify(sharing)}`);
      assert.equal(sharing.label, 'Alice is presenting');
      const cam = await picture(b.page, a.device, 'camera');
      assert.ok(cam.width > 0 && cam.distinct > 1, `alice's camera still plays in her tile: ${JSON.stringify(cam)}`);
      const frames = await waitFor(async () => decodedFrom(await b.view(), a.device, 'screen') > 5, { timeoutMs: 10_000 });
      assert.ok(frames, 'bob decodes the screen');
      // Alice: the sharing bar; her own screen is not on her stage, her camera tile stays.
      await a.page.waitForSelector('.sharing-bar:not([hidden])');
      assert.match(await a.page.textContent('.sharing-bar'), /You are sharing your screen/);
      assert.equal(await a.page.locator('.stage .tile.screen').count(), 0);
      assert.equal(await a.page.locator('.grid .tile.self.has-video').count(), 1);
      await b.page.screenshot({ path: artifact('share-viewer.png') });
      await a.page.screenshot({ path: artifact('share-presenter.png') });
      // Alice presses Stop in the bar: Bob's stage is gone within 3 s, no video holds the screen.
      const stoppedAt = Date.now();
      await a.page.locator('.sharing-bar button').click();
      const gone = await waitFor(async () => {
        const s = await shownOf(b.page, a.device);
        return { ok: !s.stage && !s.withStage && s.screenVideos === 0, ...s };
      }, { timeoutMs: 3000, intervalMs: 100 });
      const tookMs = Date.now() - stoppedAt;
      assert.ok(gone.ok, `bob's stage returns within 3 s: ${JSON.stringify(gone)}`);
      console.log(`stage gone on the viewer ${tookMs} ms after Stop was pressed (polled every 100 ms)`);
      assert.ok(gone.tileVideo && gone.tileShowsCamera, 'alice\'s camera tile stays');
      assert.equal(await a.page.locator('.sharing-bar:not([hidden])').count(), 0, 'the bar goes');
      assert.equal(await a.page.evaluate(() => window.__call.state.local.screenOn), false);
      await b.page.screenshot({ path: artifact('share-stopped-viewer.png') });
      // Sharing again brings the stage back (the stopped share's receiver may be reused).
      await a.page.evaluate(() => window.__call.setScreen(true));
      const again = await waitFor(async () => {
        const s = await shownOf(b.page, a.device);
        return { ok: s.stage && s.stageWidth > 0 && s.tileShowsCamera, ...s };
      }, { timeoutMs: 30_000 });
      assert.ok(again.ok, `a second share shows again: ${JSON.stringify(again)}`);
      // Every share and stop was asked for (`publish` / `unpublish`) and offered by the SFU:
      // no page offered after its first answer (docs/architecture.md §7.53).
      assert.equal(await counter(dev.http, 'signaling_client_reoffers_total'), 0);
      assert.ok((await counter(dev.http, 'signaling_messages_received_total{type="publish"}')) >= 2);
      assert.ok((await counter(dev.http, 'signaling_messages_received_total{type="unpublish"}')) >= 1);
      assert.deepEqual(a.errors, []);
      assert.deepEqual(b.errors, []);
    } finally {
      await a.context.close();
      await b.context.close();
    }
  });

  test('join_and_leave_notices_and_alone_banner', { timeout: 120_000 }, async () => {
    const room = `presence-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    try {
      await a.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: dev.http });
      // Alone: the card, and Copy link copies the room's lobby link (never this page's token).
      await a.page.waitForSelector('.alone:not([hidden])');
      assert.match(await a.page.textContent('.alone'), /You are the only one here/);
      await a.page.getByRole('button', { name: 'Copy link' }).click();
      await a.page.waitForFunction(() => document.querySelector('.copy-status')?.textContent === 'Link copied');
      const copied = await a.page.evaluate(() => navigator.clipboard.readText());
      assert.equal(copied, `${dev.http}/?room=${room}`);
      await a.page.screenshot({ path: artifact('alone.png') });
      // Bob joins: "Bob joined", the card goes.
      const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
      await a.page.waitForSelector('.presence.joined', { timeout: 15_000 });
      assert.equal((await a.page.textContent('.presence.joined')).trim(), 'Bob joined');
      assert.equal(await a.page.locator('.alone:not([hidden])').count(), 0);
      assert.equal(await b.page.locator('.alone:not([hidden])').count(), 0, 'bob is not alone either');
      assert.equal(await b.page.locator('.presence').count(), 0, 'the people already here are not announced to bob');
      assert.equal(await a.page.getAttribute('.presence-notices', 'aria-live'), 'polite');
      await a.page.screenshot({ path: artifact('joined-notice.png') });
      // Bob leaves: "Bob left", and Alice is alone again.
      await b.page.getByRole('button', { name: 'Leave' }).click();
      await a.page.waitForSelector('.presence.left', { timeout: 15_000 });
      assert.equal((await a.page.textContent('.presence.left')).trim(), 'Bob left');
      await a.page.waitForSelector('.alone:not([hidden])');
      // The notices go by themselves.
      await a.page.waitForSelector('.presence', { state: 'detached', timeout: 10_000 });
      assert.deepEqual(a.errors, []);
      assert.deepEqual(b.errors, []);
      await b.context.close();
    } finally {
      await a.context.close();
    }
  });
});
