// The SFU cannot read media. Production split (`sfu` + `signaling serve --sfu-url`): two
// browsers hold an encrypted call; a keyless party joins the SFU directly through its control
// API with the control secret (what an SFU operator could do) and subscribes to every track the
// browsers publish. It is a Chromium peer connection with no keys (test/pages/keyless.html)
// whose inspecting transform sees exactly the frames the SFU forwards and passes them on to the
// decoder unchanged. It receives many frames; each parses as `clear prefix || SFrame header`
// under a KID of one of the two browsers; none opens under a key of its own; none equals a
// plaintext frame the browsers decrypted (hash comparison); its video decoder gets no picture
// of the content; meanwhile the browsers decrypt and play each other's media. Both cameras
// reach it.
//
// Needs `signaling` and `sfu` ($SIGNALING_BIN/$SFU_BIN, else target/debug/…); skipped, saying
// why, without them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, serveStatic, waitFor } from './harness.mjs';
import { openDevice, serviceSkip, sleep, startSplit } from './sfu-harness.mjs';

/** Reads the SFU's newline-delimited JSON event stream; calls `onEvent` for each event. */
async function followEvents(url, secret, onEvent, signal) {
  const res = await fetch(`${url}/control/events`, { headers: { authorization: `Bearer ${secret}` }, signal });
  assert.equal(res.status, 200, 'events stream');
  const decoder = new TextDecoder();
  let buf = '';
  (async () => {
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onEvent(JSON.parse(line));
        }
      }
    } catch {
      // aborted at the end of the test
    }
  })();
}

describe('a keyless party on the SFU path (split deployment)', { skip: serviceSkip({ sfu: true }) }, () => {
  let svc;
  let keylessVideo = null;
  let chromium;
  let statics;
  before(async () => {
    svc = await startSplit();
    chromium = await launchBrowser();
    statics = await serveStatic();
  });
  after(async () => {
    await chromium?.close();
    await statics?.close();
    await svc?.stop();
  });

  test('receives only SFrame-encrypted frames it cannot open or decode, while the browsers decode', { timeout: 120_000 }, async () => {
    const room = `keyless-${Date.now()}`;
    const a = await openDevice(chromium, svc.http, room, 'alice', { name: 'Alice' });
    const b = await openDevice(chromium, svc.http, room, 'bob', { name: 'Bob' });
    const call = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: va.worker.decrypted >= 50 && vb.worker.decrypted >= 50 && va.code === vb.code, va, vb };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(call.ok, `the browsers' call: ${JSON.stringify({ a: call.va.worker, b: call.vb.worker })}`);

    // The tracks, as signaling's admin API lists them.
    const auth = { authorization: `Bearer ${svc.adminToken}` };
    const detail = await (await fetch(`${svc.http}/v1/rooms/${room}`, { headers: auth })).json();
    const tracks = detail.tracks ?? [];
    assert.ok(tracks.length >= 4, `tracks: ${JSON.stringify(detail)}`);

    // The keyless party joins the SFU through its control API.
    const page = await (await chromium.newContext()).newPage();
    await page.goto(`${statics.url}/test/pages/keyless.html`);
    await page.waitForFunction(() => window.keyless);
    const device = 'keyless-operator';
    const controller = new AbortController();
    const ctl = { authorization: `Bearer ${svc.controlSecret}`, 'content-type': 'application/json' };
    const base = `${svc.sfuControl}/control/rooms/${room}/participants`;
    const renegotiations = [];
    await followEvents(svc.sfuControl, svc.controlSecret, (ev) => {
      if (ev.type === 'offer' && ev.device === device) {
        renegotiations.push(
          (async () => {
            const sdp = await page.evaluate((s) => window.keyless.onOffer(s), ev.sdp);
            const r = await fetch(`${base}/${device}/sdp`, { method: 'POST', headers: ctl, body: JSON.stringify({ type: 'answer', sdp }) });
            assert.equal(r.status, 200, `answer to the SFU: ${await r.text()}`);
          })(),
        );
      }
    }, controller.signal);
    try {
      // One receive-only section per track, so the SFU's answer can carry them all.
      const offer = await page.evaluate((kinds) => window.keyless.offer(kinds), tracks.map((t) => t.kind));
      const subscribe = tracks.map((t) => ({ track: t.id, ...(t.kind === 'video' ? { width: 320, height: 180 } : {}) }));
      const res = await fetch(base, { method: 'POST', headers: ctl, body: JSON.stringify({ device, role: 'caller', offer, subscribe }) });
      const body = await res.json();
      assert.equal(res.status, 200, `join through the control API: ${JSON.stringify(body)}`);
      await page.evaluate((s) => window.keyless.answer(s), body.answer);

      const got = await waitFor(async () => {
        await Promise.all(renegotiations);
        const seen = await page.evaluate(() => window.keyless.seen());
        const slots = new Set(Object.keys(seen.kids).map((k) => k.split('/')[0]));
        return { ok: seen.frames >= 150 && slots.size >= 2, seen };
      }, { timeoutMs: 20_000, intervalMs: 500 });
      await sleep(2000);
      const seen = await page.evaluate(() => window.keyless.seen());
      const decoded = await page.evaluate(() => window.keyless.decoded());
      const [va, vb] = [await a.view(), await b.view()];
      const plaintext = new Set([...(await a.page.evaluate(() => window.__call.media.plaintextHashes())), ...(await b.page.evaluate(() => window.__call.media.plaintextHashes()))]);
      const report = { keyless: { ...seen, hashes: seen.hashes.length, sample: seen.hashes.slice(0, 3) }, decoded, plaintextHashes: plaintext.size, browsers: { a: va.worker, b: vb.worker } };
      console.log(JSON.stringify(report));
      keylessVideo = { frames: seen.kinds.video ?? 0, packets: decoded.videoPackets, cameras: new Set(Object.keys(seen.kids).filter((k) => k.split('/')[1] === '1').map((k) => k.split('/')[0])).size };

      assert.ok(got.ok, `the keyless party received too little: ${JSON.stringify(report)}`);
      // Every frame is `clear prefix || SFrame header` under one of the browsers' slots.
      assert.equal(seen.unparsed, 0, JSON.stringify(report));
      const slots = new Set(Object.keys(seen.kids).map((k) => Number(k.split('/')[0])));
      assert.ok([...slots].every((s) => s === va.slot || s === vb.slot), `KIDs ${JSON.stringify(seen.kids)} vs slots ${va.slot}, ${vb.slot}`);
      // No frame opens under a key the party made up for that very KID.
      assert.equal(seen.opened, 0);
      // Nothing it received is a plaintext frame the browsers decrypted.
      assert.ok(plaintext.size >= 100, 'the browsers recorded what they decrypted');
      const same = seen.hashes.filter((h) => plaintext.has(h));
      assert.deepEqual(same, [], 'a forwarded frame equals a decrypted one');
      // Its decoder gets the forwarded frames.
      // VP8 keyframes keep their 10-byte header in the clear (docs/architecture.md §2.3: the authenticated clear
      // prefix), so a decoder handed `prefix || ciphertext` now and then turns the random bits
      // after it into a noise picture (2 of 140 frames in one run): what it never gets is a
      // frame of the content (the hash check above). Anything beyond the odd keyframe decoding
      // would mean delta frames decode, i.e. readable media.
      assert.ok(decoded.videoFrames <= Math.max(3, Math.ceil((seen.kinds.video ?? 0) * 0.05)), JSON.stringify({ decoded, video: seen.kinds.video }));
      // Meanwhile the browsers decrypt what the SFU forwards to them.
      assert.ok(va.worker.decrypted > call.va.worker.decrypted && vb.worker.decrypted > call.vb.worker.decrypted);
      // (Frames that arrive before their key's envelope are dropped as `unknown_kid`, a join
      // race; none failed authentication.)
      for (const t of [...va.recvTransforms, ...vb.recvTransforms]) assert.notEqual(t.lastError, 'auth_failed', JSON.stringify(t));
    } finally {
      controller.abort();
      await fetch(`${base}/${device}`, { method: 'DELETE', headers: ctl }).catch(() => {});
      await page.context().close();
      await a.context.close();
      await b.context.close();
    }
  });

  test('both cameras reach the keyless party too', () => {
    assert.ok(keylessVideo, 'needs the test above');
    assert.equal(keylessVideo.cameras, 2, `video seen: ${JSON.stringify(keylessVideo)}`);
  });
});
