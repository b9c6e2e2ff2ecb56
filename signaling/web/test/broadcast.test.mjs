// Screen share in a broadcast room through the real service (`signaling dev` + embedded SFU):
// a presenter shares a screen (fake capture) and five viewer browsers (`watch=1`, viewer
// tokens) each hold the presenter's key, publish nothing, and decode the share (a picture, not
// black). The presenter's grid has no viewer tiles.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, picture, serviceSkip, startDev } from './sfu-harness.mjs';

const VIEWERS = 5;

describe('broadcast: a presenter shares a screen to five viewers', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  let presenter;
  let viewers = [];
  const room = `bcast-${Date.now()}`;
  before(async () => {
    dev = await startDev();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('the viewers join watch-only and get the presenter\'s keys and screen track', { timeout: 120_000 }, async () => {
    const created = await fetch(`${dev.http}/v1/rooms`, {
      method: 'POST',
      headers: { authorization: 'Bearer devadmin', 'content-type': 'application/json' },
      body: JSON.stringify({ name: room, kind: 'broadcast' }),
    });
    assert.equal(created.status, 201, await created.text());
    presenter = await openDevice(chromium, dev.http, room, 'presenter', { role: 'presenter', name: 'Presenter' });
    await presenter.page.click('[data-ctl=screen]');
    await presenter.page.waitForFunction(() => window.__call.state.local.screenOn);
    viewers = await Promise.all(Array.from({ length: VIEWERS }, (_, i) => openDevice(chromium, dev.http, room, `viewer${i}`, { role: 'viewer', watch: true, name: `Viewer ${i}` })));

    const all = await waitFor(async () => {
      const vs = await Promise.all(viewers.map((v) => v.view()));
      const p = await presenter.view();
      const ok = vs.every((v) => v.received[presenter.device]?.generation === p.sending.generation && v.remote.some((r) => r.device === presenter.device && r.source === 'screen'));
      return { ok, vs, p };
    }, { timeoutMs: 40_000, intervalMs: 1000 });
    assert.ok(all.ok, JSON.stringify(all.vs.map((v) => ({ received: v.received, remote: v.remote }))));
    for (const v of all.vs) {
      // Watch-only: nothing published, no key of its own, and it sees only the presenter.
      assert.equal(v.sending, null);
      assert.deepEqual(v.participants, [v.device, presenter.device].sort());
    }
    // The presenter sees every viewer and wraps its key to each; viewers get no tile.
    assert.equal(all.p.participants.length, VIEWERS + 1);
    assert.equal(await presenter.page.locator('.tile[data-device]').count(), 1);
    await presenter.page.screenshot({ path: artifact('sfu-broadcast-presenter.png') });
    for (const v of [presenter, ...viewers]) assert.deepEqual(v.errors, []);
  });

  test('every viewer decodes the screen share', { timeout: 60_000 }, async () => {
    assert.ok(viewers.length === VIEWERS, 'needs the viewers');
    const all = await waitFor(async () => {
      const vs = await Promise.all(viewers.map((v) => v.view()));
      return { ok: vs.every((v) => decodedFrom(v, presenter.device, 'screen') >= 20), vs };
    }, { timeoutMs: 20_000, intervalMs: 1000 });
    await viewers[0].page.screenshot({ path: artifact('sfu-broadcast-viewer.png') });
    assert.ok(all.ok, `screen frames decoded per viewer: ${all.vs.map((v) => decodedFrom(v, presenter.device, 'screen')).join(', ')}`);
    for (const v of viewers) {
      const pic = await picture(v.page, presenter.device, 'screen');
      assert.ok(pic.width > 0 && pic.mean > 10 && pic.distinct >= 2, JSON.stringify(pic));
    }
  });
});
