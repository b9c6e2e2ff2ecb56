// The page comes back after the service goes away (docs/protocol.md §1 "Reconnect"), through the
// real service and real Chromium:
//
// - `pages_reconnect_after_signaling_restarts`: two pages in a call; `signaling dev` gets
//   SIGTERM (every WebSocket closes with 1001 `server shutting down`) and starts again on the
//   same port; both pages show a calm "Reconnecting…", rejoin as the same devices and decode
//   each other again, with no error banner and no duplicate tile, and show the same call
//   security code as before (the room comes back with its call id, each device in its slot).
// - `page_reconnects_after_its_websocket_drops`: the test hook `sever-connections` cuts one
//   page's WebSocket without a close frame (1006, as a network blip) while the SFU and the other
//   page stay; it resumes (`joined.resumed`, counted in `signaling_resumes_total`), the other
//   page saw no departure and no rekey (same security code, the same key of the resumed page's
//   sender, the resumed page sends under the same key), and media flows both ways again.
// - `page_gives_up_then_rejoins_on_the_button`: with the service down past the give-up time
//   (shortened for the test) the page says the connection could not be restored and tries no
//   more; its Rejoin button brings it back once the service is up.
// - `kicked_page_does_not_reconnect`: a kick (`left` `kicked`, then 1000) ends the call with its
//   reason and the page stays out.
// - `page_retries_at_once_when_the_browser_is_back_online`: a page that went offline during an
//   outage shows that it waits for the network, and rejoins as soon as the browser is back
//   online, before its backoff's next try was due.
// - `media_reset_restores_media_in_the_browser`: `sfu` + `signaling serve` as separate
//   processes; the SFU is killed with SIGKILL and started again on the same control port; both
//   pages get `media_reset`, rebuild their media sessions with the same keys and decode each
//   other again; `signaling_media_resets_total{reason="media_node_restarted"}` counted it.
//
// Each page records every warning banner the moment it appears. Needs `signaling` (with the
// embedded SFU) and `sfu` ($SIGNALING_BIN/$SFU_BIN, else target/debug/…); skipped, saying why,
// without them.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, serviceSkip, startDev, startSplit, view } from './sfu-harness.mjs';
import { WATCH_BANNERS } from './page-init.mjs';

const DEV_ARGS = ['--test-hooks', 'sever-connections'];

/** The page's call phase, connection status and tiles (device of each tile, in DOM order). */
const status = (d) =>
  d.page.evaluate(() => ({
    phase: window.__call.state.phase,
    connection: { ...window.__call.state.connection },
    shown: document.querySelector('.connection-status')?.textContent ?? '',
    tiles: [...document.querySelectorAll('.tile[data-device]')].map((t) => t.dataset.device),
    banners: window.__banners ?? [],
  }));

/**
 * Waits until `a` and `b` are in the call and each decodes the other's camera and receives
 * decrypted audio: frames decoded from the other's camera grow by at least 5, and decrypted
 * frames grow, between two samples 1 s apart. Resolves with the last sample.
 */
async function mediaBothWays(a, b, timeoutMs) {
  const sample = async () => ({ a: await view(a.page), b: await view(b.page) });
  let prev = await sample();
  return waitFor(
    async () => {
      const now = await sample();
      const ok =
        now.a.phase === 'in-call' &&
        now.b.phase === 'in-call' &&
        decodedFrom(now.a, b.device) >= decodedFrom(prev.a, b.device) + 5 &&
        decodedFrom(now.b, a.device) >= decodedFrom(prev.b, a.device) + 5 &&
        now.a.worker.decrypted > prev.a.worker.decrypted &&
        now.b.worker.decrypted > prev.b.worker.decrypted &&
        now.a.audioPackets > prev.a.audioPackets &&
        now.b.audioPackets > prev.b.audioPackets;
      const result = { ok, a: summary(now.a, b.device), b: summary(now.b, a.device) };
      prev = now;
      return result;
    },
    { timeoutMs, intervalMs: 1000 },
  );
}

const summary = (v, other) => ({ phase: v.phase, decodedFromOther: decodedFrom(v, other), decrypted: v.worker.decrypted, failures: v.worker.failures, audioPackets: v.audioPackets, participants: v.participants });

/** Exactly one tile per device, and the two devices' tiles. */
function assertTiles(s, devices, who) {
  assert.equal(new Set(s.tiles).size, s.tiles.length, `${who}: no duplicate tile (${s.tiles})`);
  assert.deepEqual([...s.tiles].sort(), [...devices].sort(), `${who}: a tile for each device`);
}

describe('the page reconnects (signaling dev)', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  const pages = [];
  before(async () => {
    dev = await startDev({ args: DEV_ARGS });
    chromium = await launchBrowser();
  });
  after(async () => {
    for (const p of pages) await p.context.close().catch(() => {});
    await chromium?.close();
    await dev?.stop();
  });
  // A test that failed while the service was down leaves the next ones a running service.
  afterEach(async () => {
    if (dev.child.exitCode !== null || dev.child.signalCode !== null) {
      dev = await startDev({ args: DEV_ARGS, listen: new URL(dev.http).host });
    }
  });

  test('pages_reconnect_after_signaling_restarts', { timeout: 60_000 }, async () => {
    const room = `restart-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { init: WATCH_BANNERS });
    pages.push(a);
    const b = await openDevice(chromium, dev.http, room, 'bob', { init: WATCH_BANNERS });
    pages.push(b);
    const before = await mediaBothWays(a, b, 20_000);
    assert.ok(before.ok, `media both ways before the restart: ${JSON.stringify(before)}`);
    const codesBefore = { a: await view(a.page), b: await view(b.page) };
    assert.ok(codesBefore.a.code, 'alice shows a security code');
    assert.equal(codesBefore.a.code, codesBefore.b.code, 'both pages show the same code');

    // SIGTERM: the service drains (1001 `server shutting down`) and exits.
    const listen = new URL(dev.http).host;
    await dev.stop();
    const lost = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.phase === 'reconnecting' && /Reconnecting/.test(s.shown), s };
    });
    assert.ok(lost.ok, `alice shows "Reconnecting…" while the service is down: ${JSON.stringify(lost.s)}`);
    assertTiles(lost.s, [a.device, b.device], 'alice while reconnecting (tiles kept)');

    const restartedAt = Date.now();
    dev = await startDev({ args: DEV_ARGS, listen });
    const back = await mediaBothWays(a, b, 15_000);
    const tookMs = Date.now() - restartedAt;
    assert.ok(back.ok, `media both ways within 15 s of the restart: ${JSON.stringify(back)}`);
    console.log(`signaling restart → media both ways again in ${tookMs} ms`);
    for (const [d, other, who] of [[a, b, 'alice'], [b, a, 'bob']]) {
      const s = await status(d);
      assert.equal(s.phase, 'in-call', who);
      assert.equal(s.connection.status, 'connected', who);
      assert.equal(s.connection.reconnects, 1, `${who} reconnected once`);
      assert.equal(s.shown, '', `${who}: no connection status left on screen`);
      assertTiles(s, [d.device, other.device], who);
      assert.deepEqual(s.banners, [], `${who}: no error banner`);
    }
    // The same roster in the same call and slots: the same call security code on both pages.
    const codesAfter = { a: await view(a.page), b: await view(b.page) };
    assert.equal(codesAfter.a.slot, codesBefore.a.slot, 'alice got her slot back');
    assert.equal(codesAfter.b.slot, codesBefore.b.slot, 'bob got his slot back');
    assert.equal(codesAfter.a.code, codesBefore.a.code, 'alice shows the same security code as before the restart');
    assert.equal(codesAfter.b.code, codesBefore.b.code, 'bob shows the same security code as before the restart');
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page error');
  });

  test('page_reconnects_after_its_websocket_drops', { timeout: 60_000 }, async () => {
    const room = `drop-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'carol', { init: WATCH_BANNERS });
    pages.push(a);
    const b = await openDevice(chromium, dev.http, room, 'dave', { init: WATCH_BANNERS });
    pages.push(b);
    const before = await mediaBothWays(a, b, 20_000);
    assert.ok(before.ok, `media both ways before the drop: ${JSON.stringify(before)}`);
    const va = await view(a.page);
    const vb = await view(b.page);
    assert.ok(vb.received[a.device], `dave holds a key of carol's: ${JSON.stringify(vb.received)}`);
    const resumedCount = async () => {
      const text = await (await fetch(`${dev.http}/metrics`)).text();
      const m = /^signaling_resumes_total\{outcome="resumed"\} (\d+)/m.exec(text);
      assert.ok(m, 'signaling_resumes_total{outcome="resumed"} is exported');
      return Number(m[1]);
    };
    const resumesBefore = await resumedCount();

    // Only carol's WebSocket is cut, without a close frame.
    const res = await fetch(`${dev.http}/v1/rooms/${room}/participants/${encodeURIComponent(a.device)}/sever`, { method: 'POST', headers: { authorization: 'Bearer devadmin' } });
    assert.equal(res.status, 204, 'sever hook');
    const cutAt = Date.now();
    const rejoined = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.connection.reconnects === 1 && s.phase === 'in-call', s };
    }, { timeoutMs: 15_000 });
    assert.ok(rejoined.ok, `carol rejoined: ${JSON.stringify(rejoined.s)}`);
    assert.equal(rejoined.s.connection.resumes, 1, 'carol was resumed (joined.resumed), not joined afresh');
    assert.equal(await resumedCount(), resumesBefore + 1, 'the service counted one resume');
    const back = await mediaBothWays(a, b, 15_000);
    console.log(`websocket cut → media both ways again in ${Date.now() - cutAt} ms`);
    assert.ok(back.ok, `media both ways after carol's rejoin: ${JSON.stringify(back)}`);

    const sb = await status(b);
    assert.equal(sb.connection.reconnects, 0, 'dave never lost his connection');
    assert.equal(sb.phase, 'in-call');
    // Dave saw no departure and no rekey: the same code, carol's key as before, and carol
    // still sends under the key she had (her key manager and worker were kept).
    const va2 = await view(a.page);
    const vb2 = await view(b.page);
    assert.equal(vb2.code, vb.code, 'dave shows the same security code');
    assert.equal(va2.code, va.code, 'carol shows the same security code');
    assert.equal(va2.slot, va.slot, 'carol kept her slot');
    assert.deepEqual(vb2.received[a.device], vb.received[a.device], "dave's key of carol's sender is unchanged (no rekey)");
    assert.deepEqual(va2.received[b.device], va.received[b.device], "carol's key of dave's sender is unchanged (no rekey)");
    assert.deepEqual(va2.sending, va.sending, 'carol sends under the same key');
    assert.deepEqual(vb2.sending, vb.sending, 'dave sends under the same key');
    for (const [d, other, who] of [[a, b, 'carol'], [b, a, 'dave']]) {
      const s = await status(d);
      assertTiles(s, [d.device, other.device], who);
      assert.deepEqual(s.banners, [], `${who}: no error banner`);
    }
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page error');
  });

  test('page_gives_up_then_rejoins_on_the_button', { timeout: 60_000 }, async () => {
    const room = `give-up-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'kim');
    pages.push(a);
    // The same backoff, on a 2 s give-up time instead of 2 min.
    await a.page.evaluate(() => window.__call.setBackoffLimits({ firstMs: 200, maxMs: 400, giveUpMs: 2000 }));
    const listen = new URL(dev.http).host;
    await dev.stop();
    // The view draws on the next animation frame: wait for the state and for what it shows.
    const failed = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.connection.status === 'failed' && /could not be restored/.test(s.shown), s };
    }, { timeoutMs: 15_000 });
    assert.ok(failed.ok, `kim's page gave up: ${JSON.stringify(failed.s)}`);
    assert.equal(failed.s.phase, 'reconnecting', 'the call view stays (tiles kept)');
    assert.match(failed.s.shown, /could not be restored/);
    assert.deepEqual(failed.s.tiles, [a.device]);
    // Nothing more is tried until the button.
    const attempts = failed.s.connection.attempt;
    dev = await startDev({ args: DEV_ARGS, listen });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await status(a)).phase, 'reconnecting', 'no try after giving up');
    assert.equal((await status(a)).connection.attempt, attempts);
    await a.page.getByRole('button', { name: 'Rejoin' }).click();
    // The view draws on the next animation frame: wait for the state and for what it shows.
    const back = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.phase === 'in-call' && s.shown === '', s };
    }, { timeoutMs: 15_000 });
    assert.ok(back.ok, `Rejoin brought kim back and cleared the status: ${JSON.stringify(back.s)}`);
    const s = await status(a);
    assert.equal(s.shown, '');
    assert.equal(s.connection.reconnects, 1);
  });

  test('kicked_page_does_not_reconnect', { timeout: 60_000 }, async () => {
    const room = `kick-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'ivan', { init: WATCH_BANNERS });
    pages.push(a);
    const res = await fetch(`${dev.http}/v1/rooms/${room}/participants/${encodeURIComponent(a.device)}`, { method: 'DELETE', headers: { authorization: 'Bearer devadmin' } });
    assert.equal(res.status, 204, 'kick');
    const ended = await waitFor(async () => {
      const s = await a.page.evaluate(() => ({ phase: window.__call.state.phase, reason: window.__call.state.leftReason, reconnects: window.__call.state.connection.reconnects, text: document.querySelector('.lobby .lede')?.textContent ?? '' }));
      return { ok: s.phase === 'left', s };
    });
    assert.ok(ended.ok, `ivan's call ended: ${JSON.stringify(ended.s)}`);
    assert.equal(ended.s.reason, 'kicked');
    assert.match(ended.s.text, /removed from the call/);
    // Well past the first retry's time: still out, and the room does not have him.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await a.page.evaluate(() => window.__call.state.connection.reconnects), 0, 'no reconnect after a kick');
    // The room was his alone: it emptied and went (a rejoin would have re-created it).
    const detail = await fetch(`${dev.http}/v1/rooms/${room}`, { headers: { authorization: 'Bearer devadmin' } });
    assert.equal(detail.status, 404, 'the room is gone: nobody came back');
  });

  test('page_retries_at_once_when_the_browser_is_back_online', { timeout: 60_000 }, async () => {
    const room = `online-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'grace', { init: WATCH_BANNERS });
    pages.push(a);

    // The service goes away, then grace's browser goes offline: she waits for the network.
    const listen = new URL(dev.http).host;
    await dev.stop();
    await a.context.setOffline(true);
    const waiting = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.phase === 'reconnecting' && /waiting for the network/.test(s.shown), s };
    });
    assert.ok(waiting.ok, `grace shows that she waits for the network: ${JSON.stringify(waiting.s)}`);
    dev = await startDev({ args: DEV_ARGS, listen });
    // Her next try is seconds away (backoff) when the network returns.
    const far = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.phase === 'reconnecting' && s.connection.retryAt - Date.now() > 2500, s };
    }, { timeoutMs: 25_000, intervalMs: 100 });
    assert.ok(far.ok, `grace's next try is over 2.5 s away: ${JSON.stringify(far.s)}`);
    const onlineAt = Date.now();
    const dueAt = far.s.connection.retryAt;
    await a.context.setOffline(false);
    const back = await waitFor(async () => {
      const s = await status(a);
      return { ok: s.phase === 'in-call', s };
    }, { timeoutMs: 15_000, intervalMs: 100 });
    assert.ok(back.ok, `grace rejoined once online: ${JSON.stringify(back.s)}`);
    const triedAt = back.s.connection.lastAttemptAt;
    console.log(`online → rejoin attempt after ${triedAt - onlineAt} ms, in the call after ${Date.now() - onlineAt} ms (the backoff's try was due in ${dueAt - onlineAt} ms)`);
    assert.ok(triedAt < dueAt, `the successful attempt started at once, not when the backoff's try was due (${triedAt - onlineAt} ms after online, due after ${dueAt - onlineAt} ms)`);
    assert.deepEqual(back.s.banners, [], 'no error banner');
  });
});

describe('the page gets its media back after the SFU restarts (split deployment)', { skip: serviceSkip({ sfu: true }) }, () => {
  let svc;
  let chromium;
  before(async () => {
    svc = await startSplit();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await svc?.stop();
  });

  const resets = async () => {
    const text = await (await fetch(`${svc.http}/metrics`)).text();
    const m = /^signaling_media_resets_total\{reason="media_node_restarted"\} (\d+)/m.exec(text);
    assert.ok(m, 'signaling_media_resets_total{reason="media_node_restarted"} is exported');
    return Number(m[1]);
  };

  test('media_reset_restores_media_in_the_browser', { timeout: 60_000 }, async () => {
    const room = `sfu-restart-${Date.now()}`;
    const a = await openDevice(chromium, svc.http, room, 'erin', { init: WATCH_BANNERS });
    const b = await openDevice(chromium, svc.http, room, 'frank', { init: WATCH_BANNERS });
    const before = await mediaBothWays(a, b, 20_000);
    assert.ok(before.ok, `media both ways before the SFU restart: ${JSON.stringify(before)}`);
    const resetsBefore = await resets();
    const keysBefore = { a: (await view(a.page)).sending, b: (await view(b.page)).sending };

    const killedAt = Date.now();
    await svc.restartSfu();
    const reset = await waitFor(async () => {
      const sa = await status(a);
      const sb = await status(b);
      return { ok: sa.connection.mediaResets === 1 && sb.connection.mediaResets === 1, sa, sb };
    }, { timeoutMs: 20_000 });
    assert.ok(reset.ok, `both pages got media_reset: ${JSON.stringify(reset)}`);
    const back = await mediaBothWays(a, b, 20_000);
    console.log(`sfu kill -9 → media both ways again in ${Date.now() - killedAt} ms`);
    assert.ok(back.ok, `media both ways after the SFU restart: ${JSON.stringify(back)}`);
    assert.equal(await resets(), resetsBefore + 1, 'one media reset counted (one room)');

    for (const [d, other, who, key] of [[a, b, 'erin', keysBefore.a], [b, a, 'frank', keysBefore.b]]) {
      const s = await status(d);
      assert.equal(s.connection.reconnects, 0, `${who}: the signaling connection stayed`);
      assert.equal(s.phase, 'in-call');
      // The same keys: a media reset leaves the key exchange alone.
      assert.deepEqual((await view(d.page)).sending, key, `${who} sends under the same key`);
      assertTiles(s, [d.device, other.device], who);
      assert.deepEqual(s.banners, [], `${who}: no error banner`);
    }
    assert.deepEqual([...a.errors, ...b.errors], [], 'no page error');
    await a.context.close();
    await b.context.close();
  });
});
