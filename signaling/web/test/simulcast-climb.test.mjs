// A pinned tile climbs to the publisher's high simulcast layer: two headless Chromiums with the
// fake camera at 1280×720 call through `signaling dev` and its SFU on 127.0.0.1 (1 ms RTT, no
// loss); Bob pins Alice. The publisher's bandwidth estimate comes from the SFU's transport-wide
// CC feedback, so this shows that feedback working end to end: Alice's
// `availableOutgoingBitrate` grows, her `high` rid encodes at full size and is not limited by
// bandwidth, and Bob decodes Alice's camera at the high layer's width.
//
// Before the fix (sfu/vendor/README.md, "Packets no receiver claims") the SFU reported every
// bandwidth probe and retransmission of a rid layer's RTX stream lost: Alice's
// availableOutgoingBitrate sat at about 120 kbit/s and only the 320×180 layer was sent, limited
// by bandwidth. The SFU's feedback now reports each packet's kernel receive time
// (SO_TIMESTAMPNS, docs/architecture.md §7.41), not when its shard read it: with read times a
// loaded host spread Chromium's start-up probe, Chromium discarded it, started at 0.35–1.2
// Mbit/s and climbed about 8 % a second (high layer 10–28 s into the call in 6 of 12 runs);
// now it starts at 2.4–5.8 Mbit/s and sends the high layer within 3 s. And Bob's pinned tile
// keeps a height in his small window (it shrank to 0 px, and the call asked the SFU for no
// video of Alice: Bob's video froze about 1 s after the pin). Figures:
// docs/measurements/2026-12-07-kernel-receive-times.md.
//
// Figures over time (both pages' getStats) are written into the failure message and the log.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser } from './harness.mjs';
import { openDevice, serviceSkip, sleep, startDev } from './sfu-harness.mjs';

/** Alice's send side and Bob's receive side of Alice's camera, from getStats. */
async function sample(a, b, aliceDevice, t0) {
  const send = await a.page.evaluate(async () => {
    const report = await window.__call.pc.getStats();
    const layers = {};
    let available = null;
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        layers[s.rid ?? '-'] = { w: s.frameWidth ?? 0, limit: s.qualityLimitationReason, active: s.active, bytes: s.bytesSent, target: s.targetBitrate ?? null };
      }
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) available = s.availableOutgoingBitrate;
    });
    return { available, layers };
  });
  const recv = await b.page.evaluate(async (device) => {
    const c = window.__call;
    const tracks = new Set([...c.remote.receivers.values()].filter((r) => r.device === device && r.kind === 'video' && r.source === 'camera').map((r) => r.track.id));
    const report = await c.pc.getStats();
    let width = 0;
    let frames = 0;
    let packets = 0;
    let keyframes = 0;
    let plis = 0;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && tracks.has(s.trackIdentifier)) {
        width = Math.max(width, s.frameWidth ?? 0);
        frames += s.framesDecoded ?? 0;
        packets += s.packetsReceived ?? 0;
        keyframes += s.keyFramesDecoded ?? 0;
        plis += s.pliCount ?? 0;
      }
    });
    return { width, frames, packets, keyframes, plis };
  }, aliceDevice);
  return { t: Math.round((Date.now() - t0) / 100) / 10, ...send, recv };
}

describe('simulcast through the SFU', { skip: serviceSkip() }, () => {
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

  // Seconds from the pin until the high layer was sent and decoded at Bob (null: not within
  // 30 s), and the figures; the second test reads them.
  let climb = null;

  test('pinned_tile_reaches_the_high_layer_within_30_s', { timeout: 120_000 }, async () => {
    const room = `climb-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    // Bob's window is small, so his tile of Alice asks for a lower layer until he pins it.
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', viewport: { width: 480, height: 360 } });
    // The SFU's answer negotiates transport-wide CC on Alice's video (the extension and the
    // feedback), so Chromium runs its send-side estimator on the SFU's feedback. Only yes/no
    // leaves the page, never the description.
    const negotiated = await a.page.evaluate(() => {
      const sdp = window.__call.pc.remoteDescription?.sdp ?? '';
      const video = sdp.split(/\r?\nm=/).filter((m) => m.startsWith('video'));
      return {
        sections: video.length,
        extmap: video.every((m) => m.includes('http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01')),
        feedback: video.every((m) => /a=rtcp-fb:\d+ transport-cc/.test(m)),
      };
    });
    assert.deepEqual(negotiated, { sections: negotiated.sections, extmap: true, feedback: true });
    assert.ok(negotiated.sections >= 1, 'the answer has a video section');
    // Bob sees Alice's camera at all (any layer) before the clock starts.
    const t0 = Date.now();
    const figures = [];
    let first = null;
    while (Date.now() - t0 < 30_000) {
      const s = await sample(a, b, a.device, t0);
      figures.push(s);
      if (s.recv.frames > 0) {
        first = s;
        break;
      }
      await sleep(500);
    }
    assert.ok(first, `bob decodes none of alice's camera: ${JSON.stringify(figures)}`);
    await b.page.evaluate((device) => window.__call.pin(device), a.device);
    const pinned = Date.now();
    let reached = null;
    while (Date.now() - pinned < 30_000) {
      await sleep(500);
      const s = await sample(a, b, a.device, t0);
      figures.push(s);
      const high = s.layers.high;
      if (high && high.w >= 1280 && high.limit !== 'bandwidth' && s.recv.width >= 1280) {
        reached = s;
        break;
      }
    }
    const table = figures.map((s) => `t=${s.t}s available=${s.available} ${Object.entries(s.layers).map(([rid, l]) => `${rid}:${l.w}/${l.limit}/${l.target}`).join(' ')} bob:${s.recv.width}px ${s.recv.frames}f ${s.recv.keyframes}kf ${s.recv.packets}p ${s.recv.plis}pli`).join('\n');
    const after = reached && Math.round((reached.t * 1000 - (pinned - t0)) / 100) / 10;
    climb = { after, table };
    console.log(`pinned at t=${Math.round((pinned - t0) / 100) / 10}s, high layer at Bob ${after === null ? 'never' : `${after} s later`}\n${table}`);
    assert.ok(reached, `within 30 s of the pin Alice's high layer is not sent at 1280 px unlimited or Bob does not decode it:\n${table}`);
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.context.close();
    await b.context.close();
  });

  // The issue's bound. Measured (docs/measurements/2026-12-07-kernel-receive-times.md): the
  // high layer at Bob 0.5–2 s after the pin whenever the host is not loaded by other work (the
  // test command runs the browser test files one at a time); on a host kept busy by other
  // builds and browsers (load average 25–85) Alice's encoder can scale down for CPU
  // (qualityLimitationReason `cpu`) or her delay-based estimate back off, and 10 s can be missed.
  test('pinned_tile_reaches_the_high_layer_within_10_s', () => {
    assert.ok(climb, 'needs the 30 s measurement');
    assert.ok(climb.after !== null && climb.after <= 10, `high layer at Bob ${climb.after} s after the pin:\n${climb.table}`);
  });
});
