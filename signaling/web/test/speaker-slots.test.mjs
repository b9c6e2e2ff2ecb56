// Speaker-following video slots in the browser (docs/architecture.md §7.18, §7.43): four pages
// meet in a receive-slot room whose policy gives each device 2 video slots (`signaling dev
// --receive-slots --last-n 2`). Each page sends a camera of its own colour and a microphone that
// is silent until the test makes that page speak (test/page-init.mjs PAINTED_MEDIA). One page at
// a time speaks: within a bounded time every other page shows the speaker's tile with the
// speaker's name (the tile's video is the receiver whose frames open with the speaker's SFrame
// key) and the speaker's colour in its decoded picture, and no page ever shows more than 2
// remote cameras at once. Through a service that lies in every `slots` map (`--test-hooks
// lie-slot-source`) the pages still show the true speaker and count the lies.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling) and a
// build with `signaling dev --last-n` and `--test-hooks lie-slot-source`; skipped, saying why,
// without them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { PAINTED_MEDIA } from './page-init.mjs';
import { openDevice, serviceSkip, SIGNALING_BIN, startDev, view } from './sfu-harness.mjs';

/** The video slots of the room (its `last_n`). */
const VIDEO_SLOTS = 2;
/** How long a speaker change may take to reach every other page's screen. */
const FOLLOW_WITHIN_MS = 15_000;

function lastNSkip() {
  const skip = serviceSkip();
  if (skip) return skip;
  const help = execFileSync(SIGNALING_BIN, ['dev', '--help'], { encoding: 'utf8' });
  if (!/--last-n/.test(help)) return `${SIGNALING_BIN} has no --last-n (rebuild: cargo build -p signaling)`;
  return /lie-slot-source/.test(help) ? false : `${SIGNALING_BIN} has no lie-slot-source hook (rebuild: cargo build -p signaling)`;
}

/** identity, name, camera colour. */
const PEOPLE = [
  ['alice', 'Alice', [220, 40, 40]],
  ['bob', 'Bob', [40, 200, 40]],
  ['carol', 'Carol', [40, 60, 220]],
  ['dave', 'Dave', [230, 210, 30]],
];

/**
 * What a page shows of each remote participant: the name on its tile, whether the tile shows
 * video (`has-video`), the KID slot of the frames in the tile's video and the participant's
 * roster slot, whose the `slots` map says that video is, and the mean colour of the centre of
 * the tile's decoded picture.
 */
function screen(page) {
  return page.evaluate(async () => {
    const c = window.__call;
    const transforms = (await c.media.stats()).transforms;
    const out = [];
    for (const p of c.state.participants.values()) {
      if (p.self) continue;
      const el = document.querySelector(`.tile[data-device="${CSS.escape(p.device)}"]`);
      const video = el?.querySelector('video');
      const track = video?.srcObject?.getVideoTracks?.()[0] ?? null;
      const r = [...c.remote.receivers.values()].find((x) => x.track === track) ?? null;
      let rgb = null;
      if (el?.classList.contains('has-video') && video.videoWidth) {
        const canvas = document.createElement('canvas');
        canvas.width = 64;
        canvas.height = 36;
        const g = canvas.getContext('2d', { willReadFrequently: true });
        // The centre half of the picture: clear of the moving square on the top edge.
        g.drawImage(video, video.videoWidth / 4, video.videoHeight / 4, video.videoWidth / 2, video.videoHeight / 2, 0, 0, canvas.width, canvas.height);
        const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
        const sum = [0, 0, 0];
        for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
        rgb = sum.map((s) => Math.round(s / (d.length / 4)));
      }
      out.push({
        device: p.device,
        name: p.name,
        slot: p.slot,
        shownName: el?.querySelector('.name')?.textContent ?? null,
        video: !!el?.classList.contains('has-video'),
        kidSlot: r ? (transforms.find((t) => t.id === r.id)?.lastSlot ?? null) : null,
        mapSaid: r && r.mid !== null ? (c.remote.slots?.byMid.get(r.mid)?.source ?? null) : null,
        rgb,
      });
    }
    return out;
  });
}

/**
 * Whether a decoded picture's mean colour `rgb` is `want`'s: of the four cameras' colours,
 * `want` is the nearest (VP8's YUV round trip shifts a colour by a few dozen levels, never
 * towards another of these).
 */
function isColour(rgb, want) {
  if (!rgb) return false;
  const distance = (c) => c.reduce((sum, v, k) => sum + (v - rgb[k]) ** 2, 0);
  const nearest = PEOPLE.map(([, , c]) => c).reduce((best, c) => (distance(c) < distance(best) ? c : best));
  return nearest === want && distance(want) < 3 * 80 ** 2;
}

/** Opens the four pages into `room`, each with its own painted camera and silent microphone. */
async function openPeople(chromium, http, room) {
  const devices = [];
  for (const [identity, name, rgb] of PEOPLE) {
    const d = await openDevice(chromium, http, room, identity, { name, init: `(${PAINTED_MEDIA})(${JSON.stringify(rgb)})` });
    devices.push({ ...d, name, rgb });
  }
  const slots = await Promise.all(devices.map((d) => d.page.evaluate(() => window.__call.state.self.slot)));
  devices.forEach((d, i) => (d.slot = slots[i]));
  return devices;
}

/**
 * Makes `speaker` the only page that speaks; resolves with each other page's screen once it
 * shows the speaker's camera (true name, KID and colour), or the last look when
 * FOLLOW_WITHIN_MS runs out. Every look checks the page shows at most VIDEO_SLOTS cameras.
 */
async function follow(devices, speaker) {
  await Promise.all(devices.map((d) => d.page.evaluate((on) => window.__speak(on), d === speaker)));
  const started = Date.now();
  const result = await waitFor(async () => {
    const looks = [];
    for (const d of devices) {
      if (d === speaker) continue;
      const shown = await screen(d.page);
      const cameras = shown.filter((t) => t.video);
      assert.ok(cameras.length <= VIDEO_SLOTS, `${d.identity} shows ${cameras.length} remote cameras with ${VIDEO_SLOTS} video slots: ${JSON.stringify(shown)}`);
      const tile = shown.find((t) => t.device === speaker.device);
      const ok = !!tile && tile.video && tile.shownName === speaker.name && tile.kidSlot === speaker.slot && isColour(tile.rgb, speaker.rgb);
      looks.push({ who: d.identity, ok, shown });
    }
    return { ok: looks.every((l) => l.ok), looks };
  }, { timeoutMs: FOLLOW_WITHIN_MS, intervalMs: 250 });
  return { ...result, ms: Date.now() - started };
}

describe('video slots follow the speaker', { skip: lastNSkip() }, () => {
  let chromium;
  before(async () => {
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
  });

  test('four_browsers_with_two_video_slots_follow_the_speaker', { timeout: 120_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots', '--last-n', String(VIDEO_SLOTS)] });
    let devices = [];
    try {
      devices = await openPeople(chromium, dev.http, `speakers-${Date.now()}`);
      const counts = await devices[0].page.evaluate(() => window.__call.receiveSlotKinds().filter((k) => k === 'video').length);
      assert.equal(counts, VIDEO_SLOTS + 2, 'joined.receive_slots: 2 video + 2 screen slots');
      // Each in turn: Dave, Alice, Bob, Carol. From the third change on, each page's slots hold
      // someone it did not show before (Dave's page loses Alice's camera to Carol's at the end).
      const times = [];
      for (const i of [3, 0, 1, 2]) {
        const speaker = devices[i];
        const r = await follow(devices, speaker);
        assert.ok(r.ok, `${speaker.identity} speaks: not followed within ${FOLLOW_WITHIN_MS} ms: ${JSON.stringify(r.looks)}`);
        times.push(`${speaker.identity} ${r.ms} ms`);
      }
      console.log(`speaker followed on every other page: ${times.join(', ')}`);
      // The last two speakers hold every page's two video slots: Dave's page shows Carol and
      // Bob, not Alice (who spoke before them).
      const dave = await screen(devices[3].page);
      assert.deepEqual(dave.filter((t) => t.video).map((t) => t.name).sort(), ['Bob', 'Carol'], JSON.stringify(dave));
      for (const d of devices) {
        const v = await view(d.page);
        assert.deepEqual(v.warnings, [], `${d.identity}: warnings`);
      }
      await devices[0].page.screenshot({ path: artifact('speaker-slots.png') });
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await dev.stop();
    }
  });

  test('a_lying_slot_map_in_a_two_slot_room_shows_the_true_speaker', { timeout: 120_000 }, async () => {
    const dev = await startDev({ args: ['--receive-slots', '--last-n', String(VIDEO_SLOTS), '--test-hooks', 'lie-slot-source'] });
    let devices = [];
    try {
      devices = await openPeople(chromium, dev.http, `speakers-lie-${Date.now()}`);
      for (const i of [3, 0]) {
        const speaker = devices[i];
        const r = await follow(devices, speaker);
        assert.ok(r.ok, `${speaker.identity} speaks through a lying service: ${JSON.stringify(r.looks)}`);
        for (const look of r.looks) {
          const tile = look.shown.find((t) => t.device === speaker.device);
          assert.ok(tile.mapSaid && tile.mapSaid !== speaker.device, `${look.who}: the hook did not lie about ${speaker.name}'s slot: ${JSON.stringify(tile)}`);
        }
      }
      for (const d of devices) {
        const v = await view(d.page);
        assert.ok(v.sourceMismatches >= 1, `${d.identity}: source_mismatches ${v.sourceMismatches}`);
      }
      assert.deepEqual(devices.flatMap((d) => d.errors), []);
    } finally {
      for (const d of devices) await d.context.close();
      await dev.stop();
    }
  });
});
