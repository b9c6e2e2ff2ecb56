// Pairwise verification in real browsers through the real service (`signaling dev` with its SFU,
// the page it serves, headless Chromium, loopback only): two devices open the security panel for
// each other, see the same emoji sequence (docs/e2ee.md §4.1) and confirm it; a mismatch warns and
// verifies nothing; the QR code on screen decodes (jsQR) to the safety number shown beside it.
// Screenshots go to artifacts/web/.
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling) built
// from this checkout (a debug build serves the web client from the directory it was built in);
// skipped, saying why, without it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pairVerification } from '../e2ee/emoji.mjs';
import { artifact, launchBrowser } from './harness.mjs';
import { openDevice, serviceSkip, startDev } from './sfu-harness.mjs';

const JSQR = new URL('../node_modules/jsqr/package.json', import.meta.url);

/** Waits until `d`'s call holds `peer` with a verified bundle (an identity key). */
function waitForPeer(d, peer) {
  return d.page.waitForFunction((p) => !!window.__call?.state.participants.get(p)?.identityKey, peer, { timeout: 60_000 });
}

/** Opens the security panel on `d`, unfolds `peer`'s entry; resolves with its locator. */
async function openPeer(d, peer) {
  await waitForPeer(d, peer);
  if ((await d.page.locator('.security-panel').count()) === 0) await d.page.click('[data-ctl="security"]');
  const person = d.page.locator(`.security-panel .person[data-device="${peer}"]`);
  await person.locator('.person-row button.link').click();
  await person.locator('.safety-number').waitFor();
  return person;
}

/** Shows the emoji comparison in `person`'s entry; resolves with `[{emoji, word}]` as on screen. */
async function compareEmoji(person) {
  await person.locator('button.compare-emoji').click();
  await person.locator('.emoji-sequence').waitFor();
  return person.locator('.emoji-symbol').evaluateAll((els) => els.map((e) => ({ emoji: e.querySelector('.emoji-glyph').textContent, word: e.querySelector('.emoji-word').textContent })));
}

const safetyDigits = (person) => person.locator('.safety-number').evaluate((e) => e.textContent.replace(/\D/g, ''));

/** Both identity keys as this page holds them: `{self, peer}` of `{device, identityKey}`. */
function identities(d, peer) {
  return d.page.evaluate((p) => {
    const s = window.__call.state;
    const of = (x) => ({ device: x.device, identityKey: Array.from(x.identityKey) });
    return { self: of(s.participants.get(s.self.device)), peer: of(s.participants.get(p)) };
  }, peer);
}

/** Scrolls the first element matching `selector` to the top of its scrolling panel. */
const scrollTo = (d, selector) => d.page.evaluate((sel) => document.querySelector(sel)?.scrollIntoView({ block: 'start' }), selector);

const verifiedOn = (d, peer) => d.page.evaluate((p) => window.__call.state.participants.get(p).verified, peer);

describe('pairwise verification through signaling dev and its SFU', { skip: serviceSkip() }, () => {
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

  async function pair(room, viewport = undefined) {
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', viewport });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    // Generous waits: on a shared 2-core test host, builds beside the test slow both browsers.
    for (const d of [a, b]) d.page.setDefaultTimeout(60_000);
    return { a, b, close: () => Promise.all([a.context.close(), b.context.close()]) };
  }

  test('two_pages_show_the_same_emoji_and_confirming_marks_verified', { timeout: 240_000 }, async () => {
    // Alice's window is tall enough for the whole entry (number, QR code, emoji) in the screenshot.
    const { a, b, close } = await pair(`verify-${Date.now()}`, { width: 1280, height: 1100 });
    try {
      const onA = await openPeer(a, b.device);
      const onB = await openPeer(b, a.device);
      const [emojiA, emojiB] = [await compareEmoji(onA), await compareEmoji(onB)];
      assert.equal(emojiA.length, 16);
      assert.deepEqual(emojiA, emojiB, 'both pages show the same 16 emoji in the same order');
      // The same as the module computes here (Node) from the keys the pages hold.
      const ids = await identities(a, b.device);
      const expected = await pairVerification(
        { device: ids.self.device, identityKey: Uint8Array.from(ids.self.identityKey) },
        { device: ids.peer.device, identityKey: Uint8Array.from(ids.peer.identityKey) },
      );
      assert.deepEqual(emojiA, expected.emoji.symbols.map((s) => ({ emoji: s.emoji, word: s.word })));
      assert.equal(await safetyDigits(onA), expected.safetyNumber);
      assert.equal(await safetyDigits(onB), expected.safetyNumber);
      // The words are the accessible name of the sequence.
      assert.equal(await onA.locator('.emoji-sequence').getAttribute('aria-label'), `Emoji sequence: ${expected.emoji.words}`);
      assert.equal(await verifiedOn(a, b.device), false);
      // The panel with the number, its QR code and the emoji in view (one evaluate: the panel
      // redraws on every state change, so element handles do not stay attached).
      await scrollTo(a, `.person[data-device="${b.device}"]`);
      await a.page.screenshot({ path: artifact('verification-emoji.png') });
      await onA.getByRole('button', { name: 'They match' }).click();
      await onB.getByRole('button', { name: 'They match' }).click();
      await onA.locator('.pill.ok').waitFor();
      await onB.locator('.pill.ok').waitFor();
      assert.equal(await verifiedOn(a, b.device), true);
      assert.equal(await verifiedOn(b, a.device), true);
      // Kept in the device's trust store: a fresh look at the pin says verified.
      const pinned = await a.page.evaluate(async (peer) => {
        const { IdentityStore } = await import('/identity-store.js');
        const p = window.__call.state.participants.get(peer);
        return (await (await IdentityStore.open()).observe(p.identity ?? p.device, p.device, p.identityKey)).verified;
      }, b.device);
      assert.equal(pinned, true);
      await a.page.screenshot({ path: artifact('verification-verified.png') });
      assert.deepEqual(a.errors, []);
      assert.deepEqual(b.errors, []);
    } finally {
      await close();
    }
  });

  test('mismatch_warns_and_does_not_verify', { timeout: 240_000 }, async () => {
    const { a, b, close } = await pair(`mismatch-${Date.now()}`);
    try {
      const onA = await openPeer(a, b.device);
      // A mark set before (by hand) does not survive a "don't match".
      await onA.getByRole('button', { name: 'Mark as verified' }).click();
      await onA.locator('.pill.ok').waitFor();
      await compareEmoji(onA);
      await onA.getByRole('button', { name: "They don't match" }).click();
      const alert = onA.locator('.emoji-mismatch[role="alert"]');
      await alert.waitFor();
      assert.match(await alert.textContent(), /intercepting your connection with Bob.*not verified/);
      await onA.locator('.pill.warn').waitFor();
      assert.equal(await onA.locator('.pill.warn').textContent(), 'Emoji differ');
      assert.equal(await verifiedOn(a, b.device), false);
      assert.equal(await onA.locator('.emoji-sequence').count(), 0, 'the comparison closes');
      assert.match(await a.page.textContent('.security-panel .list-caption'), /0 of 1 verified/);
      await scrollTo(a, '.emoji-mismatch');
      await a.page.screenshot({ path: artifact('verification-mismatch.png') });
      // The other side is untouched: nothing is sent to the peer.
      assert.equal(await verifiedOn(b, a.device), false);
      assert.deepEqual(a.errors, []);
    } finally {
      await close();
    }
  });

  test('qr_code_on_screen_decodes_to_the_safety_number', { timeout: 240_000, skip: !existsSync(JSQR) && 'jsqr not installed (cd signaling/web && npm ci)' }, async () => {
    const { default: jsQR } = await import('jsqr');
    const { a, b, close } = await pair(`qr-${Date.now()}`);
    try {
      const onA = await openPeer(a, b.device);
      const digits = await safetyDigits(onA);
      assert.match(digits, /^\d{60}$/);
      const qr = onA.locator('canvas.qr');
      // The text alternative is the number itself.
      assert.equal(await qr.getAttribute('role'), 'img');
      assert.equal((await qr.getAttribute('aria-label')).replace(/\D/g, ''), digits);
      // What the screen shows (a screenshot of the element, scaled by CSS), decoded by jsQR.
      const png = await qr.screenshot();
      const shot = await a.page.evaluate(async (b64) => {
        const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
        const bitmap = await createImageBitmap(blob);
        const c = new OffscreenCanvas(bitmap.width, bitmap.height);
        const g = c.getContext('2d');
        g.drawImage(bitmap, 0, 0);
        return { width: c.width, height: c.height, data: Array.from(g.getImageData(0, 0, c.width, c.height).data) };
      }, png.toString('base64'));
      const seen = jsQR(Uint8ClampedArray.from(shot.data), shot.width, shot.height);
      assert.ok(seen, `jsQR found no code in the ${shot.width}x${shot.height} screenshot`);
      assert.equal(seen.data, digits);
      // And the canvas pixels themselves.
      const raw = await qr.evaluate((c) => ({ width: c.width, height: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) }));
      assert.equal(jsQR(Uint8ClampedArray.from(raw.data), raw.width, raw.height)?.data, digits);
      assert.deepEqual(a.errors, []);
    } finally {
      await close();
    }
  });
});
