// Raised hands, reactions and the speaker view in the browser, through the real service
// (`signaling dev` with its SFU), in headless Chromium pages with fake camera and microphone,
// loopback only. Alice's token grants `moderator`; Bob and Carol are callers.
// - Bob raises his hand from the keyboard: every page shows the hand on his tile and in the
//   queue, the others get "Bob raised their hand"; a late joiner sees it; a hand goes when its
//   device leaves; Bob lowers it again.
// - Bob forges `moderate` `lower_hand` for Carol's hand: the service refuses it (`forbidden`);
//   Alice lowers it from the queue.
// - Alice reacts 👍: it floats over her tile on every page, and every WebSocket frame the pages
//   sent or got (what the service saw) holds only the sealed chat, never the emoji.
// - The speaker view keeps the tile order of the grid and is remembered across a reload.
// Screenshots: target/screenshots/hands-reaction.png (a raised hand and a reaction),
// target/screenshots/speaker-view.png.
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

/** Records every WebSocket frame the page sends and gets (`window.__frames`), before any script runs. */
const CAPTURE_FRAMES = () => {
  window.__frames = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    window.__frames.push({ dir: 'sent', data: String(data) });
    if (!this.__captured) {
      this.__captured = true;
      this.addEventListener('message', (e) => window.__frames.push({ dir: 'got', data: String(e.data) }));
    }
    return send.call(this, data);
  };
};

function moderatorToken(room, identity) {
  return execFileSync(SIGNALING_BIN, ['token', '--room', room, '--identity', identity, '--role', 'caller', '--moderator'], { encoding: 'utf8' }).trim();
}

/** Opens the page as one device with `tok` (its own context, frames captured) and waits for the call. */
async function open(chromium, http, room, name, tok) {
  const context = await chromium.newContext({ viewport: WINDOW });
  await context.addInitScript(CAPTURE_FRAMES);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ room, name, join: '1', test: '1' });
  await page.goto(`${http}/?${q}#token=${tok}`);
  await page.waitForFunction(() => window.__call?.state.phase === 'in-call', null, { timeout: 30_000 });
  const device = await page.evaluate(() => window.__call.state.self.device);
  return { context, page, errors, device, name };
}

/** What `p` shows of hands: the marked tiles, the queue's names, the hand notices, the button. */
function handsSeen(p) {
  return p.page.evaluate(() => ({
    marked: [...document.querySelectorAll('.tile .mark.hand')].map((m) => m.closest('.tile').dataset.device).sort(),
    queue: [...document.querySelectorAll('.hand-queue .hand-entry')].map((e) => e.dataset.device),
    notices: [...document.querySelectorAll('.presence.hand')].map((e) => e.lastChild.textContent),
    pressed: document.querySelector('[data-ctl=hand]')?.getAttribute('aria-pressed') ?? null,
  }));
}

describe('raised hands, reactions and views through signaling dev', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  let alice;
  let bob;
  let carol;
  const room = `hands-${Date.now()}`;
  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    dev = await startDev();
    chromium = await launchBrowser();
    alice = await open(chromium, dev.http, room, 'Alice', moderatorToken(room, 'alice'));
    bob = await open(chromium, dev.http, room, 'Bob', token(room, 'bob'));
    carol = await open(chromium, dev.http, room, 'Carol', token(room, 'carol'));
    const three = await waitFor(async () => {
      const n = await Promise.all([alice, bob, carol].map((x) => x.page.evaluate(() => document.querySelectorAll('.tile[data-device]').length)));
      return { ok: n.every((x) => x === 3), n };
    }, { timeoutMs: 20_000 });
    assert.ok(three.ok, `three tiles on every page: ${three.n}`);
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('raised_hand_shows_on_every_page_and_a_joiner_sees_it', { timeout: 120_000 }, async () => {
    // Keyboard only: Bob focuses the button and presses Enter.
    await bob.page.focus('[data-ctl=hand]');
    await bob.page.keyboard.press('Enter');
    const up = await waitFor(async () => {
      const seen = await Promise.all([alice, bob, carol].map(handsSeen));
      const ok = seen.every((s) => s.marked.join() === bob.device && s.queue.join() === bob.device)
        && seen[1].pressed === 'true'
        && [seen[0], seen[2]].every((s) => s.notices.includes('Bob raised their hand'));
      return { ok, seen };
    });
    assert.ok(up.ok, `every page shows Bob's hand: ${JSON.stringify(up.seen)}`);
    assert.equal(await bob.page.evaluate(() => document.activeElement?.dataset.ctl), 'hand', 'the button keeps the focus');
    assert.equal(await alice.page.getAttribute(`.tile[data-device="${bob.device}"] .mark.hand`, 'aria-label'), 'Bob: hand raised');

    // Dave joins late and sees it; his own hand goes up after Bob's and goes when he leaves.
    const dave = await open(chromium, dev.http, room, 'Dave', token(room, 'dave'));
    const late = await waitFor(async () => {
      const s = await handsSeen(dave);
      return { ok: s.marked.join() === bob.device && s.queue.join() === bob.device, s };
    });
    assert.ok(late.ok, `Dave sees Bob's hand: ${JSON.stringify(late.s)}`);
    await dave.page.click('[data-ctl=hand]');
    const two = await waitFor(async () => {
      const s = await handsSeen(alice);
      return { ok: s.queue.join() === [bob.device, dave.device].join(), s };
    });
    assert.ok(two.ok, `in the order they went up: ${JSON.stringify(two.s)}`);
    await dave.page.click('[data-ctl=leave]');
    await dave.context.close();
    const gone = await waitFor(async () => {
      const seen = await Promise.all([alice, bob, carol].map(handsSeen));
      return { ok: seen.every((s) => s.queue.join() === bob.device && s.marked.join() === bob.device), seen };
    });
    assert.ok(gone.ok, `Dave's hand went with him: ${JSON.stringify(gone.seen)}`);
    const eve = await open(chromium, dev.http, room, 'Eve', token(room, 'eve'));
    const eveSees = await eve.page.evaluate(() => window.__call.state.hands.queue);
    assert.deepEqual(eveSees, [bob.device], 'a joiner after Dave left gets only Bob\'s hand');
    await eve.page.click('[data-ctl=leave]');
    await eve.context.close();

    // Bob lowers it: gone everywhere.
    await bob.page.click('[data-ctl=hand]');
    const down = await waitFor(async () => {
      const seen = await Promise.all([alice, bob, carol].map(handsSeen));
      return { ok: seen.every((s) => !s.marked.length && !s.queue.length) && seen[1].pressed === 'false', seen };
    });
    assert.ok(down.ok, JSON.stringify(down.seen));
    for (const p of [alice, bob, carol, dave, eve]) assert.deepEqual(p.errors, [], `no page errors at ${p.name}`);
  });

  test('moderator_lowers_a_hand_and_a_non_moderator_is_refused', { timeout: 60_000 }, async () => {
    await carol.page.evaluate(() => window.__call.setHand(true));
    const up = await waitFor(async () => {
      const seen = await Promise.all([alice, bob].map(handsSeen));
      return { ok: seen.every((s) => s.queue.join() === carol.device), seen };
    });
    assert.ok(up.ok, JSON.stringify(up.seen));
    assert.equal(await bob.page.locator('.hand-queue [data-mod=lower-hand]').count(), 0, 'no Lower for a non-moderator');
    assert.equal(await alice.page.locator('.hand-queue [data-mod=lower-hand]').count(), 1, 'Lower for the moderator');

    // Bob forges the moderator's action: the service refuses it and the hand stays up.
    await bob.page.evaluate((d) => window.__call.signaling.send({ type: 'moderate', action: 'lower_hand', device: d }), carol.device);
    const refused = await waitFor(async () => {
      const codes = await bob.page.evaluate(() => window.__call.state.serverErrors.map((e) => e.code));
      return { ok: codes.includes('forbidden'), codes };
    });
    assert.ok(refused.ok, `the service refused Bob's lower_hand: ${JSON.stringify(refused)}`);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual((await handsSeen(alice)).queue, [carol.device], 'still up after the refusal');

    // Alice lowers it from the queue.
    await alice.page.click(`.hand-entry[data-device="${carol.device}"] [data-mod=lower-hand]`);
    const lowered = await waitFor(async () => {
      const seen = await Promise.all([alice, bob, carol].map(handsSeen));
      const by = await carol.page.evaluate(() => ({ device: window.__call.state.hands.loweredBy, told: document.querySelector('.notice.hand-lowered span')?.textContent ?? null }));
      return { ok: seen.every((s) => !s.queue.length && !s.marked.length) && by.device === alice.device && by.told === 'Alice lowered your hand', seen, by };
    });
    assert.ok(lowered.ok, JSON.stringify(lowered));
    for (const p of [alice, bob, carol]) assert.deepEqual(p.errors, [], `no page errors at ${p.name}`);
  });

  test('reaction_shows_on_the_senders_tile_and_the_service_sees_only_ciphertext', { timeout: 60_000 }, async () => {
    // Bob's hand goes up first (its notice gone before the screenshot, which shows the mark).
    await bob.page.evaluate(() => window.__call.setHand(true));
    // Alice holds the others' keys and they hold hers before she reacts.
    const keyed = await waitFor(async () => {
      const gen = await alice.page.evaluate(() => window.__call.keys.current?.generation);
      const held = await Promise.all([bob, carol].map((x) => x.page.evaluate((d) => window.__call.keys.received.get(d)?.generation, alice.device)));
      return { ok: gen !== undefined && held.every((g) => g === gen), gen, held };
    }, { timeoutMs: 20_000 });
    assert.ok(keyed.ok, JSON.stringify(keyed));
    await carol.page.waitForSelector(`.tile[data-device="${bob.device}"] .mark.hand`);
    await carol.page.waitForSelector('.presence.hand', { state: 'detached', timeout: 15_000 });
    await alice.page.evaluate(() => { window.__frames.length = 0; });
    // From the controls: React, then 👍.
    await alice.page.click('[data-ctl=react]');
    await alice.page.click('.reaction-picker [data-reaction="👍"]');
    const floating = await waitFor(async () => {
      const seen = await Promise.all([alice, bob, carol].map((x) => x.page.evaluate((d) => [...document.querySelectorAll(`.tile[data-device="${d}"] .tile-reactions .reaction`)].map((e) => `${e.textContent}|${e.getAttribute('aria-label')}`), alice.device)));
      return { ok: seen.every((s) => s.includes('👍|Alice reacted 👍')), seen };
    }, { timeoutMs: 10_000, intervalMs: 100 });
    assert.ok(floating.ok, `👍 floats over Alice's tile on every page: ${JSON.stringify(floating.seen)}`);
    await carol.page.screenshot({ path: `${SCREENSHOTS}hands-reaction.png` });
    const chatLog = await bob.page.evaluate(() => window.__call.state.chat.messages.map((m) => m.text));
    assert.ok(!chatLog.some((t) => t.includes('👍')), 'a reaction is not a chat message');

    // The page's allowance: of ten at once, at most three go; the service refuses none.
    const results = await alice.page.evaluate(async () => Promise.all(Array.from({ length: 10 }, () => window.__call.react('👏'))));
    assert.ok(results.filter(Boolean).length <= 3, `sent ${results.filter(Boolean).length} of 10`);
    await new Promise((r) => setTimeout(r, 500));

    // Everything the pages sent and got (what the service relayed): sealed chat only.
    const frames = (await Promise.all([alice, bob, carol].map((x) => x.page.evaluate(() => window.__frames)))).flat();
    const chats = frames.map((f) => JSON.parse(f.data)).filter((m) => m.type === 'chat');
    assert.ok(chats.length >= 3, `the reactions went as chat: ${chats.length}`);
    for (const m of chats) assert.deepEqual(Object.keys(m.chat).sort(), ['ct', 'generation', 'nonce', 'step', 'v'], JSON.stringify(m));
    const plain = Buffer.from('\u0001👍').toString('base64url');
    const needles = ['👍', '👏', '\\ud83d\\udc4d', '\\ud83d\\udc4f', 'reaction', 'thumbs', plain];
    for (const f of frames) for (const n of needles) assert.ok(!f.data.toLowerCase().includes(n.toLowerCase()), `${n} in a ${f.dir} frame: ${f.data.slice(0, 200)}`);
    // (A `media_error` from a subscription that crossed Dave's or Eve's departure is a normal race.)
    const errors = await alice.page.evaluate(() => window.__call.state.serverErrors.filter((e) => !(e.code === 'media_error' && /unknown track/i.test(e.message))));
    assert.deepEqual(errors, [], 'the service refused none of the reactions');
    await bob.page.evaluate(() => window.__call.setHand(false));
    for (const p of [alice, bob, carol]) assert.deepEqual(p.errors, [], `no page errors at ${p.name}`);
  });

  test('speaker_view_toggle_keeps_the_order_and_the_choice', { timeout: 90_000 }, async () => {
    const layout = (p) => p.page.evaluate(() => ({
      grid: [...document.querySelectorAll('.grid > .tile[data-device]')].map((t) => t.dataset.device),
      stage: document.querySelector('.stage > .tile')?.dataset.device ?? null,
      speaker: document.querySelector('.stage-area')?.classList.contains('speaker-view') ?? false,
      pressed: document.querySelector('[data-ctl=view]')?.getAttribute('aria-pressed') ?? null,
      stored: localStorage.getItem('e2ee-call.view'),
    }));
    const before = await layout(carol);
    assert.equal(before.stage, null);
    assert.equal(before.grid.length, 3);
    assert.equal(before.grid[0], carol.device, 'this device first');

    await carol.page.focus('[data-ctl=view]');
    await carol.page.keyboard.press('Enter');
    // Over a few seconds of speaker changes: the featured speaker on the stage, never this
    // device, the others in the filmstrip in the grid's order.
    for (let i = 0; i < 6; i++) {
      const now = await layout(carol);
      assert.ok(now.speaker && now.pressed === 'true' && now.stored === 'speaker', JSON.stringify(now));
      assert.ok(now.stage && now.stage !== carol.device, `a speaker on the stage: ${JSON.stringify(now)}`);
      assert.deepEqual(now.grid, before.grid.filter((d) => d !== now.stage), 'the filmstrip keeps the order');
      // Another speaker: the stage follows, the filmstrip order holds.
      const other = before.grid.find((d) => d !== carol.device && d !== now.stage);
      await carol.page.evaluate((d) => { window.__call.state.activeSpeaker = d; window.__call.dispatchEvent(new Event('change')); }, other);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(await carol.page.evaluate(() => document.activeElement?.dataset.ctl), 'view', 'the toggle keeps the focus');
    await carol.page.screenshot({ path: `${SCREENSHOTS}speaker-view.png` });

    // Kept across a reload (the page joins again as the same device).
    await carol.page.reload();
    await carol.page.waitForFunction(() => window.__call?.state.phase === 'in-call', null, { timeout: 30_000 });
    const reloaded = await waitFor(async () => {
      const now = await layout(carol);
      return { ok: now.speaker && now.pressed === 'true' && !!now.stage && now.grid.length === 2, now };
    });
    assert.ok(reloaded.ok, JSON.stringify(reloaded.now));

    // Back to the grid: the filmstrip's order holds, the featured tile back in its place.
    await carol.page.click('[data-ctl=view]');
    const back = await waitFor(async () => {
      const now = await layout(carol);
      return { ok: !now.speaker && now.stage === null && now.stored === 'grid' && now.grid.length === 3, now };
    });
    assert.ok(back.ok, JSON.stringify(back.now));
    assert.equal(back.now.grid[0], carol.device);
    assert.deepEqual(back.now.grid.filter((d) => reloaded.now.grid.includes(d)), reloaded.now.grid);
    for (const p of [alice, bob]) assert.deepEqual(p.errors, [], `no page errors at ${p.name}`);
  });
});
