// The clear-prefix vectors (test/data/clear-prefix-vectors.json, docs/e2ee.md §1.2): the
// browser's rule gives each listed length, and a sealed frame starts with exactly those bytes.
// The Rust test `clear_prefix_matches_the_browser_rule` (signaling/client) reads the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fromHex } from '../bytes.mjs';
import { decryptMediaFrameWithKey, encryptMediaFrame, clearPrefixLength } from '../media.mjs';
import { decodeHeader } from '../sframe-header.mjs';
import { SframeKey } from '../sframe.mjs';
import { DEFAULT_SUITE } from '../suites.mjs';

const VECTORS = JSON.parse(readFileSync(new URL('./data/clear-prefix-vectors.json', import.meta.url), 'utf8'));

test('clear prefix: the browser rule gives every vector its length and leaves those bytes in clear', async () => {
  assert.ok(VECTORS.cases.length >= 20);
  const key = await SframeKey.derive(DEFAULT_SUITE, new Uint8Array(32).fill(7), 0x1234n);
  let ctr = 0n;
  for (const { name, codec, frame: hex, clear_prefix_len: n } of VECTORS.cases) {
    const frame = fromHex(hex);
    assert.equal(clearPrefixLength(codec, frame), n, name);
    const wire = await encryptMediaFrame(key, ctr, codec, frame);
    assert.deepEqual(wire.subarray(0, n), frame.subarray(0, n), name);
    const header = decodeHeader(wire.subarray(n));
    assert.equal(header.kid, 0x1234n, name);
    assert.equal(header.ctr, ctr, name);
    const opened = await decryptMediaFrameWithKey(key, codec, wire);
    assert.deepEqual(opened.frame, frame, name);
    assert.equal(opened.prefixLength, n, name);
    ctr += 1n;
  }
});
