// The browser in a receive-slot room (docs/architecture.md §7.19, §7.23): `signaling dev
// --receive-slots` gives every device the room's receive slots (`joined.receive_slots`), the
// page offers them as recvonly sections restricted to Opus and VP8 (+RTX) and the header extensions the SFU uses, so the offer fits the
// 60 KiB SDP cap, the SFU fills them (`slots` messages), and each page names its tiles by the
// SFrame KID of the frames, not by the map's `source` — also when the service lies about it
// (`--test-hooks lie-slot-source`). No call shows an error banner.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling) and a
// build with `signaling dev --receive-slots` and `--test-hooks lie-slot-source`; skipped, saying
// why, without them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, serviceSkip, SIGNALING_BIN, startDev, view } from './sfu-harness.mjs';

/** The protocol's cap on an SDP body (docs/protocol.md). */
const SDP_CAP = 60 * 1024;

function slotSkip() {
  const skip = serviceSkip();
  if (skip) return skip;
  const help = execFileSync(SIGNALING_BIN, ['dev', '--help'], { encoding: 'utf8' });
  if (!/--receive-slots/.test(help)) return `${SIGNALING_BIN} has no --receive-slots (rebuild: cargo build -p signaling)`;
  return /lie-slot-source/.test(help) ? false : `${SIGNALING_BIN} has no lie-slot-source hook (rebuild: cargo build -p signaling)`;
}

const PEOPLE = [
  ['alice', 'Alice'],
  ['bob', 'Bob'],
  ['carol', 'Carol'],
  ['dave', 'Dave'],
];

/**
 * For each remote participant of a page: the name its tile shows, the KID slot of the frames in
 * the tile's video, the participant's roster slot, and whose the `slots` map says that video is.
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
        mapSaid: r && r.mid !== null ? (c.remote.slots?.byMid.get(r.mid)?.source ?? null) : null,
      });
    }
    return out;
  });
}

/** The page's slot-map version (null: none applied) and its error banners (shown warnings, lobby errors). */
function slotState(page) {
  return page.evaluate(() => ({
    version: window.__call.remote.slots?.version ?? null,
    banners: [...document.querySelectorAll('.warnings > *, .form-error')].map((e) => e.textContent),
    warnings: window.__call.state.warnings.map((w) => `${w.kind}: ${w.text}`),
  }));
}

function assertNoBanners(s, who) {
  assert.deepEqual(s.banners, [], `${who}: error banners`);
  assert.deepEqual(s.warnings, [], `${who}: warnings`);
}

/** Opens `people` into `room`; resolves once each page decodes every other's camera. */
async function slotMeeting(chromium, http, room, people) {
  const devices = [];
  for (const [identity, name] of people) devices.push(await openDevice(chromium, http, room, identity, { name }));
  const all = await waitFor(async () => {
    const views = await Promise.all(devices.map((d) => d.view()));
    const ok = views.every((v, i) => devices.every((d, j) => i === j || decodedFrom(v, d.device) >= 10));
    return { ok, views };
  }, { timeoutMs: 90_000, intervalMs: 1000 });
  assert.ok(all.ok, `no ${people.length}-way slot call: ${JSON.stringify(all.views.map((v) => ({ device: v.device, remote: v.remote, inbound: v.inbound })))}`);
  return devices;
}

function assertTilesByKid(shown, count, who) {
  assert.equal(shown.length, count, `${who}: ${JSON.stringify(shown)}`);
  for (const t of shown) {
    assert.equal(t.shownName, t.name, `${who}: tile of ${t.device}: ${JSON.stringify(t)}`);
    assert.equal(t.kidSlot, t.slot, `${who}: the tile of ${t.name} plays frames opened with slot ${t.kidSlot}'s key: ${JSON.stringify(t)}`);
  }
}

describe('the browser in a receive-slot room', { skip: slotSkip() }, () => {
  let chromium;
  before(async () => {
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
  });

  test('slot_offer_with_default_slot_counts_fits_the_sdp_cap', { timeout: 120_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots'] });
    let d;
    try {
      d = await openDevice(chromium, dev.http, `size-${Date.now()}`, 'alice', { name: 'Alice' });
      // Only sizes and counts leave the page, never the SDP.
      const sizes = await d.page.evaluate(async () => {
        const c = window.__call;
        const kinds = c.receiveSlotKinds();
        // What the page sends (test mode keeps loopback candidates only).
        const sdp = c.localSdp();
        // The same sections with every default codec, in a scratch connection never sent.
        const scratch = new RTCPeerConnection();
        scratch.addTransceiver('audio', { direction: 'sendonly' });
        scratch.addTransceiver('video', { direction: 'sendonly' });
        for (const k of kinds) scratch.addTransceiver(k, { direction: 'recvonly' });
        const unrestricted = (await scratch.createOffer()).sdp;
        scratch.close();
        const sections = sdp.split('\r\nm=').slice(1);
        // The slot sections (the page's own send sections keep their wider lists).
        const slots = sections.filter((m) => m.includes('\r\na=recvonly'));
        const codecs = (kind) => new Set(slots.filter((m) => m.startsWith(kind)).flatMap((m) => [...m.matchAll(/a=rtpmap:\d+ ([\w-]+)\//g)].map((x) => x[1].toLowerCase())));
        const extmaps = Math.max(...slots.map((m) => m.split('\r\na=extmap:').length - 1));
        return { extmaps, slotSections: slots.length, slots: kinds.length, sections: sections.length, bytes: sdp.length, unrestricted: unrestricted.length, audio: [...codecs('audio')], video: [...codecs('video')] };
      });
      console.log(`slot offer: ${sizes.slots} slots, ${sizes.sections} sections, ${sizes.bytes} B sent, ${sizes.unrestricted} B before candidates with every default codec and extension`);
      assert.ok(sizes.slots >= 31, `default slot counts: ${sizes.slots}`);
      assert.equal(sizes.sections, sizes.slots + 2);
      assert.equal(sizes.slotSections, sizes.slots);
      assert.ok(sizes.extmaps <= 4, `a slot section negotiates ${sizes.extmaps} header extensions`);
      assert.ok(sizes.bytes < SDP_CAP, `offer ${sizes.bytes} B`);
      assert.ok(sizes.unrestricted > SDP_CAP, `without the restriction the offer would be ${sizes.unrestricted} B: the test no longer shows the cap's bite`);
      assert.deepEqual(sizes.audio, ['opus']);
      assert.deepEqual(sizes.video.sort(), ['rtx', 'vp8']);
      const s = await slotState(d.page);
      assert.ok(s.version !== null, 'no slots map applied');
      assertNoBanners(s, 'alice');
      assert.deepEqual(d.errors, []);
    } finally {
      await d?.context.close();
      await dev.stop();
    }
  });

  test('four_browsers_in_a_slot_room_show_each_camera_by_kid_and_maps_grow_on_joins', { timeout: 300_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots'] });
    let devices = [];
    try {
      devices = await slotMeeting(chromium, dev.http, `slots4-${Date.now()}`, PEOPLE);
      const versions = [];
      for (const d of devices) {
        assertTilesByKid(await tiles(d.page), 3, d.identity);
        const v = await view(d.page);
        assert.equal(v.sourceMismatches, 0, `${d.identity}: an honest map counted ${v.sourceMismatches} mismatches`);
        const s = await slotState(d.page);
        assertNoBanners(s, d.identity);
        versions.push(s.version);
      }
      // Each page's map grew as the others joined (at least one map per arrival it saw).
      versions.forEach((v, i) => assert.ok(v >= 1 + (devices.length - 1 - i), `${devices[i].identity}: slots version ${v}`));
      await devices[0].page.screenshot({ path: artifact('slot-room-four.png') });
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await dev.stop();
    }
  });

  // A leave that only empties a slot (nothing to take it) still sends a newer map
  // (sfu/forwarding: a_leave_that_only_empties_a_slot_announces_a_new_map).
  test('a_leave_sends_the_remaining_pages_a_newer_slot_map', { timeout: 240_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots'] });
    let devices = [];
    try {
      devices = await slotMeeting(chromium, dev.http, `slotleave-${Date.now()}`, PEOPLE.slice(0, 3));
      const before = await Promise.all(devices.map(async (d) => (await slotState(d.page)).version));
      const gone = devices.pop();
      await gone.page.click('[data-ctl=leave]');
      await gone.context.close();
      for (const [i, d] of devices.entries()) {
        const grown = await waitFor(async () => {
          const s = await slotState(d.page);
          const map = await d.page.evaluate(() => [...(window.__call.remote.slots?.byMid.values() ?? [])].map((x) => x.source).filter(Boolean));
          const roster = await d.page.evaluate(() => window.__call.state.participants.size);
          return { ok: s.version > before[i] && !map.includes(gone.device), s, map, roster };
        }, { timeoutMs: 30_000, intervalMs: 500 });
        assert.ok(grown.ok, `${d.identity}: after a leave (version before ${before[i]}): ${JSON.stringify(grown)}`);
        assertTilesByKid(await tiles(d.page), 1, d.identity);
        assertNoBanners(grown.s, d.identity);
      }
    } finally {
      for (const d of devices) await d.context.close();
      await dev.stop();
    }
  });

  test('a_lying_slot_map_does_not_rename_tiles', { timeout: 240_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots', '--test-hooks', 'lie-slot-source'] });
    let devices = [];
    try {
      devices = await slotMeeting(chromium, dev.http, `slotlie-${Date.now()}`, PEOPLE.slice(0, 3));
      for (const d of devices) {
        const shown = await tiles(d.page);
        assertTilesByKid(shown, 2, d.identity);
        // The map did lie about each tile's video: it named the other remote member.
        for (const t of shown) assert.ok(t.mapSaid && t.mapSaid !== t.device, `${d.identity}: the hook did not lie about ${t.name}: ${JSON.stringify(t)}`);
        const v = await view(d.page);
        assert.ok(v.sourceMismatches >= 2, `${d.identity}: source_mismatches ${v.sourceMismatches}`);
        assertNoBanners(await slotState(d.page), d.identity);
      }
      await devices[0].page.screenshot({ path: artifact('slot-room-lying-map.png') });
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await dev.stop();
    }
  });
});
