// Remote media is named by the authenticated SFrame KID, never by the server's word. Three
// browsers meet through `signaling dev` started with `--test-hooks lie-track-source`: every
// `track_published` (and `joined.tracks`) names a third member as a track's publisher. Each
// page still shows every remote camera in its true sender's tile (the tile's video is the
// receiver whose frames open with that sender's key, the tile says that sender's name) and
// counts the lies in `source_mismatches` (quality panel). The same meeting through an honest
// service counts none.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling) and a
// build that has `signaling dev --test-hooks`; skipped, saying why, without them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, serviceSkip, SIGNALING_BIN, startDev, view } from './sfu-harness.mjs';

function hookSkip() {
  const skip = serviceSkip();
  if (skip) return skip;
  const help = execFileSync(SIGNALING_BIN, ['dev', '--help'], { encoding: 'utf8' });
  return /--test-hooks/.test(help) ? false : `${SIGNALING_BIN} has no --test-hooks (rebuild: cargo build -p signaling)`;
}

const PEOPLE = [
  ['alice', 'Alice'],
  ['bob', 'Bob'],
  ['carol', 'Carol'],
];

/**
 * For each remote participant of a page: the name its tile shows, the KID slot of the frames
 * in the tile's video (from the worker), the participant's roster slot, and who the server said
 * published that video.
 */
function tiles(page) {
  return page.evaluate(async () => {
    const c = window.__call;
    const transforms = (await c.media.stats()).transforms;
    const out = [];
    for (const p of c.state.participants.values()) {
      if (p.self) continue;
      const el = document.querySelector(`.tile[data-device="${CSS.escape(p.device)}"]`);
      const track = el?.querySelector('video')?.srcObject?.getVideoTracks?.()[0] ?? null;
      const r = [...c.remote.receivers.values()].find((x) => x.track === track) ?? null;
      out.push({
        device: p.device,
        name: p.name,
        slot: p.slot,
        shownName: el?.querySelector('.name')?.textContent ?? null,
        kidSlot: r ? (transforms.find((t) => t.id === r.id)?.lastSlot ?? null) : null,
        serverSaid: r ? (c.remote.announced.get(r.track.id)?.publisher ?? null) : null,
      });
    }
    return out;
  });
}

/** Three browsers in a meeting; resolves once each decodes both others' cameras. */
async function meeting(chromium, http, room) {
  const devices = [];
  for (const [identity, name] of PEOPLE) devices.push(await openDevice(chromium, http, room, identity, { name }));
  const all = await waitFor(async () => {
    const views = await Promise.all(devices.map((d) => d.view()));
    const ok = views.every((v, i) => devices.every((d, j) => i === j || decodedFrom(v, d.device) >= 10));
    return { ok, views };
  }, { timeoutMs: 60_000, intervalMs: 1000 });
  assert.ok(all.ok, `no three-way call: ${JSON.stringify(all.views.map((v) => ({ device: v.device, remote: v.remote, inbound: v.inbound })))}`);
  return devices;
}

function assertTilesTrue(shown, who) {
  assert.equal(shown.length, 2, `${who}: ${JSON.stringify(shown)}`);
  for (const t of shown) {
    assert.equal(t.shownName, t.name, `${who}: tile of ${t.device}: ${JSON.stringify(t)}`);
    assert.equal(t.kidSlot, t.slot, `${who}: the tile of ${t.name} plays frames opened with slot ${t.kidSlot}'s key: ${JSON.stringify(t)}`);
  }
}

describe('remote media is named by the SFrame KID', { skip: hookSkip() }, () => {
  let chromium;
  before(async () => {
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
  });

  test('tiles_are_named_by_the_kid_not_by_the_server', { timeout: 180_000 }, async () => {
    // A lying service: each page is told that a track belongs to the third member.
    const liar = await startDev({ args: ['--test-hooks', 'lie-track-source'] });
    let devices = [];
    try {
      devices = await meeting(chromium, liar.http, `lie-${Date.now()}`);
      for (const d of devices) {
        const shown = await tiles(d.page);
        assertTilesTrue(shown, d.identity);
        // The server did lie about each tile's video: it named the other remote member.
        for (const t of shown) assert.ok(t.serverSaid && t.serverSaid !== t.device, `${d.identity}: the hook did not lie about ${t.name}: ${JSON.stringify(t)}`);
        const v = await view(d.page);
        assert.ok(v.sourceMismatches >= 2, `${d.identity}: source_mismatches ${v.sourceMismatches}`);
      }
      // The quality panel shows the count.
      const a = devices[0];
      await a.page.click('[data-ctl=quality]');
      const panel = await waitFor(async () => {
        const t = await a.page.textContent('.quality-panel');
        const m = /(\d+)\s*source mismatches/i.exec(t ?? '');
        return { ok: m && Number(m[1]) >= 2, t };
      }, { timeoutMs: 8000 });
      assert.ok(panel.ok, `quality panel: ${panel.t}`);
      await a.page.screenshot({ path: artifact('kid-attribution-lying-server.png') });
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await liar.stop();
    }

    // An honest service: the same tiles, nothing counted.
    const honest = await startDev();
    devices = [];
    try {
      devices = await meeting(chromium, honest.http, `honest-${Date.now()}`);
      for (const d of devices) {
        const shown = await tiles(d.page);
        assertTilesTrue(shown, d.identity);
        for (const t of shown) assert.equal(t.serverSaid, t.device, JSON.stringify(t));
        const v = await view(d.page);
        assert.equal(v.sourceMismatches, 0, `${d.identity}: source_mismatches ${v.sourceMismatches}`);
      }
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await honest.stop();
    }
  });
});
