// The module in a real browser: headless Chromium (Debian's /usr/bin/chromium, installed by
// scripts/install-deps) loads test/browser/index.html from a server on 127.0.0.1 and runs the
// RFC 9605/9180 vectors, browser-made (and, when present, Rust-made) cross fixtures and a module
// worker round trip on its own WebCrypto.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { runInChromium } from './browser/run-chromium.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

test('chromium: rfc9605 and rfc9180 vectors, fixtures and a worker round trip pass in headless Chromium', {
  skip: !existsSync(CHROMIUM) && `${CHROMIUM} not installed (scripts/install-deps installs Debian's chromium)`,
  timeout: 120_000,
}, async () => {
  const summary = await runInChromium({ chromium: CHROMIUM });
  const failed = summary.results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], `failed in ${summary.userAgent}`);
  assert.ok(summary.passed >= 40, `only ${summary.passed} checks ran`);
  assert.match(summary.userAgent, /HeadlessChrome\//);
  for (const name of ['rfc9605 sframe suite 5', 'rfc9180 A.1.1', 'module worker: sender and receiver key store round trip']) {
    assert.ok(summary.results.some((r) => r.name === name && r.ok), name);
  }
});
