// Media states and end-to-end encrypted chat through the real service (`signaling dev` with its
// SFU), in three headless Chromium pages with fake camera and microphone, loopback only: when
// Alice mutes, Bob and Carol see her muted-microphone mark; when she turns her camera off, Bob
// sees her initials instead of a black picture; a chat message Alice sends reaches Bob and
// Carol with her name, and the chat panel (screenshot in target/screenshots/) shows it, with
// the join notice and an unread badge before it is opened (Bob's view of Alice muted with her
// camera off is target/screenshots/muted-camera-off.png).
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, waitFor } from './harness.mjs';
import { openDevice, REPO, serviceSkip, startDev } from './sfu-harness.mjs';

const SCREENSHOTS = `${REPO}target/screenshots/`;

/** What `page` draws in `device`'s tile: the muted mark, the camera-off mark, whether the video or the initials show. */
function tile(page, device) {
  return page.evaluate((d) => {
    const el = document.querySelector(`.tile[data-device="${d}"]`);
    if (!el) return null;
    const avatar = el.querySelector('.avatar');
    return {
      muted: el.querySelector('.mark.muted')?.getAttribute('aria-label') ?? null,
      cameraOff: el.querySelector('.mark.camera-off')?.getAttribute('aria-label') ?? null,
      hasVideo: el.classList.contains('has-video'),
      initials: avatar?.textContent ?? null,
      avatarVisible: avatar ? getComputedStyle(avatar).display !== 'none' && getComputedStyle(avatar).visibility !== 'hidden' : false,
      avatarLabel: avatar?.getAttribute('aria-label') ?? null,
    };
  }, device);
}

describe('media states and chat through signaling dev', { skip: serviceSkip() }, () => {
  let dev;
  let chromium;
  let a;
  let b;
  let c;
  const room = `state-${Date.now()}`;
  before(async () => {
    dev = await startDev();
    chromium = await launchBrowser();
    a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice Liddell' });
    b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    c = await openDevice(chromium, dev.http, room, 'carol', { name: 'Carol' });
    const three = await waitFor(async () => {
      const n = await Promise.all([a, b, c].map((x) => x.page.evaluate(() => window.__call.state.participants.size)));
      return { ok: n.every((x) => x === 3), n };
    }, { timeoutMs: 20_000 });
    assert.ok(three.ok, `three in the call: ${three.n}`);
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('mute_and_camera_off_are_visible_to_others', { timeout: 60_000 }, async () => {
    // Before: Alice's microphone is on at Bob's and Carol's.
    const before = await waitFor(async () => {
      const [tb, tc] = [await tile(b.page, a.device), await tile(c.page, a.device)];
      return { ok: tb && tc && !tb.muted && !tc.muted, tb, tc };
    });
    assert.ok(before.ok, JSON.stringify(before));

    await a.page.click('[data-ctl=mic]');
    const muted = await waitFor(async () => {
      const [tb, tc] = [await tile(b.page, a.device), await tile(c.page, a.device)];
      return { ok: !!tb?.muted && !!tc?.muted, tb, tc };
    });
    assert.ok(muted.ok, `Bob and Carol see Alice muted: ${JSON.stringify(muted)}`);
    assert.equal(muted.tb.muted, 'Alice Liddell: microphone muted');

    // Alice's camera plays at Bob's before she turns it off.
    const playing = await waitFor(async () => {
      const t = await tile(b.page, a.device);
      return { ok: !!t?.hasVideo, t };
    }, { timeoutMs: 30_000, intervalMs: 500 });
    assert.ok(playing.ok, `Alice's video plays at Bob's: ${JSON.stringify(playing.t)}`);

    await a.page.click('[data-ctl=camera]');
    const off = await waitFor(async () => {
      const t = await tile(b.page, a.device);
      return { ok: t && !t.hasVideo && !!t.cameraOff && t.avatarVisible, t };
    });
    assert.ok(off.ok, `Bob sees Alice's initials: ${JSON.stringify(off.t)}`);
    assert.equal(off.t.initials, 'AL');
    assert.equal(off.t.avatarLabel, 'Alice Liddell: camera off');
    mkdirSync(SCREENSHOTS, { recursive: true });
    await b.page.screenshot({ path: `${SCREENSHOTS}muted-camera-off.png` });

    // A late joiner gets Alice's state in `joined.media_states`.
    const d = await openDevice(chromium, dev.http, room, 'dave', { name: 'Dave' });
    const late = await waitFor(async () => {
      const t = await tile(d.page, a.device);
      return { ok: !!t?.muted && !!t?.cameraOff && !t.hasVideo, t };
    }, { timeoutMs: 15_000 });
    assert.ok(late.ok, `Dave, joining late, sees Alice muted with her camera off: ${JSON.stringify(late.t)}`);
    await d.page.click('[data-ctl=leave]');
    await d.context.close();

    // Unmuted and camera back on: both marks go away at Bob's.
    await a.page.click('[data-ctl=mic]');
    await a.page.click('[data-ctl=camera]');
    const back = await waitFor(async () => {
      const t = await tile(b.page, a.device);
      return { ok: t && !t.muted && !t.cameraOff, t };
    });
    assert.ok(back.ok, JSON.stringify(back.t));
    assert.deepEqual([...a.errors, ...b.errors, ...c.errors, ...d.errors], []);
  });

  test('chat_message_reaches_everyone', { timeout: 60_000 }, async () => {
    const text = `Lunch at one? ☕ ${Date.now()}`;
    // Keyboard only: Alice opens the panel with its button, types and presses Enter.
    await a.page.focus('[data-ctl=chat]');
    await a.page.keyboard.press('Enter');
    await a.page.waitForSelector('.chat-panel .chat-input');
    assert.equal(await a.page.evaluate(() => document.activeElement?.classList.contains('chat-input')), true, 'the message box has the focus');
    await a.page.keyboard.type(text);
    await a.page.keyboard.press('Enter');

    for (const x of [b, c]) {
      const got = await waitFor(async () => {
        const s = await x.page.evaluate(() => ({ messages: window.__call.state.chat.messages.filter((m) => m.kind !== 'notice'), unread: window.__call.state.chat.unread }));
        return { ok: s.messages.some((m) => m.text === text && m.name === 'Alice Liddell' && m.kind === 'message'), s };
      });
      assert.ok(got.ok, `${x.identity} got Alice's message: ${JSON.stringify(got.s)}`);
      assert.ok(got.s.unread >= 1, 'counted unread while the panel is closed');
      const badge = await x.page.textContent('[data-ctl=chat] .unread-badge');
      assert.ok(Number(badge) >= 1, `badge ${badge}`);
    }

    // Bob opens the panel: the message with Alice's name, and the badge goes.
    await b.page.click('[data-ctl=chat]');
    const shown = await waitFor(async () => {
      const items = await b.page.$$eval('.chat-list .chat-message', (els) => els.map((e) => ({ name: e.querySelector('.chat-name')?.textContent, text: e.querySelector('.chat-text')?.textContent })));
      const badge = await b.page.$('[data-ctl=chat] .unread-badge');
      return { ok: items.some((m) => m.name === 'Alice Liddell' && m.text === text) && !badge, items };
    });
    assert.ok(shown.ok, JSON.stringify(shown.items));
    const notices = await b.page.$$eval('.chat-list .chat-notice', (els) => els.map((e) => e.textContent));
    assert.ok(notices.some((n) => n.startsWith('Carol joined')), `join notice at Bob's: ${JSON.stringify(notices)}`);
    assert.ok(notices.some((n) => n.startsWith('Dave left')), `leave notice at Bob's: ${JSON.stringify(notices)}`);

    // Bob answers; Alice (panel open) sees it with Bob's name and no unread count.
    await b.page.fill('.chat-input', 'Sure!');
    await b.page.click('.chat-send');
    const answered = await waitFor(async () => {
      const s = await a.page.evaluate(() => ({ messages: window.__call.state.chat.messages, unread: window.__call.state.chat.unread }));
      return { ok: s.messages.some((m) => m.text === 'Sure!' && m.name === 'Bob') && s.unread === 0, s };
    });
    assert.ok(answered.ok, JSON.stringify(answered.s));

    mkdirSync(SCREENSHOTS, { recursive: true });
    await b.page.screenshot({ path: `${SCREENSHOTS}chat-panel.png` });
    await a.page.screenshot({ path: `${SCREENSHOTS}chat-panel-alice.png` });
    assert.deepEqual([...a.errors, ...b.errors, ...c.errors], []);
  });

  test('a_broadcast_viewer_reads_the_presenters_chat_and_cannot_write', { timeout: 60_000 }, async () => {
    const bc = `${room}-bc`;
    const created = await fetch(`${dev.http}/v1/rooms`, {
      method: 'POST',
      headers: { authorization: 'Bearer devadmin', 'content-type': 'application/json' },
      body: JSON.stringify({ name: bc, kind: 'broadcast' }),
    });
    assert.equal(created.status, 201, await created.text());
    const p = await openDevice(chromium, dev.http, bc, 'presenter', { role: 'presenter', name: 'Presenter' });
    const v = await openDevice(chromium, dev.http, bc, 'viewer', { role: 'viewer', watch: true, name: 'Viewer' });
    // The viewer holds the presenter's key before the message is sealed under it.
    const keyed = await waitFor(async () => {
      const [gp, rv] = await Promise.all([p.page.evaluate(() => window.__call.keys.current?.generation), v.page.evaluate((d) => window.__call.keys.received.get(d)?.generation, p.device)]);
      return { ok: gp !== undefined && gp === rv, gp, rv };
    }, { timeoutMs: 20_000 });
    assert.ok(keyed.ok, JSON.stringify(keyed));
    await p.page.evaluate(() => window.__call.sendChat('Welcome, everyone'));
    await v.page.click('[data-ctl=chat]');
    const read = await waitFor(async () => {
      const items = await v.page.$$eval('.chat-list .chat-message', (els) => els.map((e) => e.querySelector('.chat-name')?.textContent + ': ' + e.querySelector('.chat-text')?.textContent));
      return { ok: items.includes('Presenter: Welcome, everyone'), items };
    });
    assert.ok(read.ok, JSON.stringify(read.items));
    assert.equal(await v.page.isVisible('.chat-form'), false, 'no message box for a viewer');
    assert.equal(await v.page.isVisible('.chat-read-only'), true);
    assert.deepEqual([...p.errors, ...v.errors], []);
    await p.context.close();
    await v.context.close();
  });
});
