// The Call's media path in Chromium before the SFU exists: the real Call, key manager, worker
// and peer connection; an in-page stand-in server answers join and the offer (a receive-only
// peer connection plays the SFU). Loopback only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launch, openPage, serveStatic, SKIP, waitFor } from './harness.mjs';

describe('call media path in chromium', { skip: SKIP }, () => {
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

  test('publishes encrypted camera (3 simulcast layers, VP8) and mic, mutes, shares a screen, reports stats, leaves', { timeout: 30_000 }, async () => {
    const { page, errors } = await openPage(browser.context, `${server.url}/test/pages/call-smoke.html`);
    await page.waitForFunction(() => window.smokeReady);
    const s = await page.evaluate(() => window.smoke.start());
    assert.equal(s.phase, 'in-call');
    assert.deepEqual(s.tracks.map((t) => `${t.kind}:${t.source}`), ['audio:microphone', 'video:camera']);
    assert.deepEqual(s.tracks[1].layers, ['low', 'medium', 'high']);
    assert.deepEqual(s.rids, ['low', 'medium', 'high']);
    assert.ok(s.videoCodecs.includes('VP8') && s.videoCodecs.includes('opus'));
    assert.ok(!s.videoCodecs.includes('H264') && !s.videoCodecs.includes('AV1'), s.videoCodecs.join(','));
    assert.ok(s.candidates.length > 0 && s.candidates.every((a) => a.startsWith('127.')), s.candidates.join(','));
    assert.deepEqual(s.envelopesTo, ['dev-peer:g0']);
    const sending = await waitFor(async () => {
      const v = await page.evaluate(() => window.smoke.snapshot());
      return { ok: v.encrypted > 50 && v.packetsSent > 50 && v.stats.length >= 1, v };
    }, { timeoutMs: 12_000 });
    assert.ok(sending.ok, JSON.stringify(sending.v));
    assert.equal(sending.v.dropped, 0, 'every frame had a key');
    assert.equal(typeof sending.v.stats[0].decrypt_failures, 'number');
    assert.equal(await page.evaluate(() => window.smoke.mute()), false);
    await page.screenshot({ path: artifact('call-smoke.png') });
    // Screen share: getDisplayMedia (auto-accepted by the fake UI flag), `publish`, the SFU's
    // offer of a section it receives on, the page's answer sending the screen there (VP8). The
    // page never offers after its first answer (docs/architecture.md §7.53).
    const shared = await page.evaluate(() => window.smoke.share());
    assert.equal(shared.screenOn, true);
    assert.equal(shared.publishes, 1);
    assert.equal(shared.screenDirection, 'recvonly', JSON.stringify(shared));
    assert.ok(shared.screenPackets > 10, JSON.stringify(shared));
    assert.equal(shared.codec, 'VP8', JSON.stringify(shared));
    assert.equal(shared.offers, 1, 'the page offered once: its first offer');
    const stopped = await page.evaluate(() => window.smoke.unshare());
    assert.deepEqual(stopped, { screenOn: false, offers: 1, screenDirection: 'inactive', unpublishes: 1 });
    const again = await page.evaluate(() => window.smoke.share());
    assert.equal(again.screenOn, true);
    assert.equal(again.offers, 1, 'a second share asks again; still no offer from the page');
    const after = await page.evaluate(() => window.smoke.snapshot());
    assert.equal(after.offers, 1);
    const left = await page.evaluate(() => window.smoke.leave());
    assert.deepEqual(left, { phase: 'left', leaveSent: true });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
