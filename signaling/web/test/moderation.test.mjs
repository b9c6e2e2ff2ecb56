// Moderation in the browser, through the real service (`signaling dev` with its SFU), in three
// headless Chromium pages with fake camera and microphone, loopback only. Alice's token grants
// `moderator`: she turns the lobby on from the top bar; Bob's join waits ("Waiting for a
// moderator to let you in") until she admits him from the waiting list; from the menu on Bob's
// tile she asks him to mute (his page mutes itself, and Alice sees his muted mark) and removes
// him (his page says he was removed). Carol, no moderator, sees none of the controls, and a
// `moderate` she forges through the console is refused by the service (`forbidden`). Alice's
// "End for all" ends Carol's call. Screenshots: target/screenshots/moderation-*.png.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, waitFor } from './harness.mjs';
import { REPO, SIGNALING_BIN, WINDOW, serviceSkip, startDev, token } from './sfu-harness.mjs';

const SCREENSHOTS = `${REPO}target/screenshots/`;

/** A development token granting `moderator` (`signaling token --moderator`). */
function moderatorToken(room, identity) {
  return execFileSync(SIGNALING_BIN, ['token', '--room', room, '--identity', identity, '--role', 'caller', '--moderator'], { encoding: 'utf8' }).trim();
}

/** Opens the page as one device (its own browser context) with `tok`; does not wait for the call. */
async function openPage(chromium, http, room, name, tok) {
  const context = await chromium.newContext({ viewport: WINDOW });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ room, name, join: '1', test: '1' });
  await page.goto(`${http}/?${q}#token=${tok}`);
  return { context, page, errors };
}

async function inCall(p) {
  await p.page.waitForFunction(() => window.__call?.state.phase === 'in-call', null, { timeout: 30_000 });
  return p.page.evaluate(() => window.__call.state.self.device);
}

const phase = (p) => p.page.evaluate(() => window.__call?.state.phase ?? null);

describe('moderation in the browser through signaling dev', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  const room = `mod-${Date.now()}`;
  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    dev = await startDev();
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('moderator_admits_from_the_lobby_and_removes_a_participant_in_the_browser', { timeout: 120_000 }, async () => {
    const alice = await openPage(chromium, dev.http, room, 'Alice', moderatorToken(room, 'alice'));
    const aliceDevice = await inCall(alice);
    const carol = await openPage(chromium, dev.http, room, 'Carol', token(room, 'carol'));
    const carolDevice = await inCall(carol);
    assert.equal(await alice.page.evaluate(() => window.__call.state.moderation.moderator), true);

    // Carol moderates nothing: no controls, no tile menus, and a forged action is refused.
    const carolSees = await carol.page.evaluate(() => ({
      bar: document.querySelectorAll('.moderator-bar button').length,
      menus: document.querySelectorAll('.tile-menu').length,
    }));
    assert.deepEqual(carolSees, { bar: 0, menus: 0 });
    await carol.page.evaluate((d) => window.__call.signaling.send({ type: 'moderate', action: 'remove', device: d }), aliceDevice);
    const refused = await waitFor(async () => {
      const codes = await carol.page.evaluate(() => window.__call.state.serverErrors.map((e) => e.code));
      return { ok: codes.includes('forbidden'), codes };
    });
    assert.ok(refused.ok, `the service refused Carol's forged remove: ${JSON.stringify(refused)}`);
    assert.equal(await phase(alice), 'in-call', 'Alice is still in the call');

    // Alice turns the lobby on from the top bar.
    await alice.page.click('.moderator-bar [data-mod=lobby]');
    const lobbyOn = await waitFor(async () => {
      const s = await alice.page.evaluate(() => ({ lobby: window.__call.state.moderation.lobby, pressed: document.querySelector('[data-mod=lobby]')?.getAttribute('aria-pressed') }));
      return { ok: s.lobby && s.pressed === 'true', s };
    });
    assert.ok(lobbyOn.ok, JSON.stringify(lobbyOn));

    // Bob waits, and says so.
    const bob = await openPage(chromium, dev.http, room, 'Bob', token(room, 'bob'));
    const waits = await waitFor(async () => {
      const s = await bob.page.evaluate(() => ({ phase: window.__call?.state.phase, text: document.body.innerText }));
      return { ok: s.phase === 'waiting' && s.text.includes('Waiting for a moderator to let you in'), s };
    }, { timeoutMs: 20_000 });
    assert.ok(waits.ok, JSON.stringify(waits));
    await bob.page.screenshot({ path: `${SCREENSHOTS}moderation-waiting.png` });

    // Alice sees him waiting, and admits him.
    await alice.page.waitForSelector('.waiting-entry [data-mod=admit]');
    assert.match(await alice.page.innerText('.waiting-list'), /Bob/);
    await alice.page.screenshot({ path: `${SCREENSHOTS}moderation-lobby.png` });
    await alice.page.click('.waiting-entry [data-mod=admit]');
    const bobDevice = await inCall(bob);
    const three = await waitFor(async () => {
      const n = await Promise.all([alice, bob, carol].map((x) => x.page.evaluate(() => window.__call.state.participants.size)));
      return { ok: n.every((x) => x === 3), n };
    }, { timeoutMs: 20_000 });
    assert.ok(three.ok, `three in the call: ${three.n}`);
    await alice.page.waitForFunction(() => !document.querySelector('.waiting-entry'));

    // Ask to mute, from the menu on Bob's tile: his page mutes itself and says so.
    const bobMicOn = await waitFor(async () => ({ ok: await bob.page.evaluate(() => window.__call.state.local.micOn) }));
    assert.ok(bobMicOn.ok, 'Bob starts unmuted');
    const menu = `.tile[data-device="${bobDevice}"] .tile-menu`;
    await alice.page.click(`${menu} .tile-menu-open`);
    await alice.page.screenshot({ path: `${SCREENSHOTS}moderation-tile-menu.png` });
    await alice.page.click(`${menu} [data-mod=ask-mute]`);
    const muted = await waitFor(async () => {
      const b = await bob.page.evaluate(() => ({ micOn: window.__call.state.local.micOn, notice: window.__call.state.notices.find((n) => n.kind === 'mute-requested')?.text ?? null }));
      const seen = await alice.page.evaluate((d) => document.querySelector(`.tile[data-device="${d}"] .mark.muted`) !== null, bobDevice);
      return { ok: !b.micOn && !!b.notice && seen, b, seen };
    });
    assert.ok(muted.ok, `Bob muted himself and Alice sees it: ${JSON.stringify(muted)}`);
    assert.match(muted.b.notice, /Alice asked you to mute/);

    // Remove Bob from his tile's menu.
    await alice.page.click(`${menu} .tile-menu-open`);
    await alice.page.click(`${menu} [data-mod=remove]`);
    const removed = await waitFor(async () => {
      const b = await bob.page.evaluate(() => ({ phase: window.__call.state.phase, reason: window.__call.state.leftReason, text: document.body.innerText }));
      const n = await alice.page.evaluate(() => window.__call.state.participants.size);
      return { ok: b.phase === 'left' && b.reason === 'kicked' && b.text.includes('You were removed from the call.') && n === 2, b, n };
    });
    assert.ok(removed.ok, JSON.stringify(removed));

    // End for all: Carol's call ends, and Alice's.
    await alice.page.click('.moderator-bar [data-mod=end]');
    const endedAll = await waitFor(async () => {
      const c = await carol.page.evaluate(() => ({ reason: window.__call.state.leftReason, text: document.body.innerText }));
      const a = await alice.page.evaluate(() => window.__call.state.leftReason);
      const aPhase = await alice.page.evaluate(() => window.__call.state.phase);
      return { ok: c.reason === 'call_ended' && c.text.includes('A moderator ended the call for everyone.') && a === 'call_ended', c, a: a ?? null, aPhase };
    }, { timeoutMs: 20_000 });
    assert.ok(endedAll.ok, JSON.stringify(endedAll));
    assert.equal(carolDevice.length > 0, true);
    for (const p of [alice, bob, carol]) assert.deepEqual(p.errors, [], 'no page errors');
  });
});
