/**
 * Writes the clear-prefix vector file (docs/e2ee.md §1.2) from the browser's rule,
 * `clearPrefixLength` of media.mjs: for each frame, the bytes a sender leaves in clear. Made
 * once and committed; the JS test `clear-prefix-vectors.test.mjs` and the Rust test
 * `clear_prefix_matches_the_browser_rule` (signaling/client) both read it.
 *
 *   node signaling/web/e2ee/tools/clear-prefix-vectors.mjs signaling/web/e2ee/test/data/clear-prefix-vectors.json
 *
 * @module tools/clear-prefix-vectors
 */
import { writeFileSync } from 'node:fs';
import { toHex } from '../bytes.mjs';
import { clearPrefixLength } from '../media.mjs';

/** `n` bytes: `head`, then a counting pattern (no randomness: the file is reproducible). */
function frame(head, n) {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = i < head.length ? head[i] : (i * 37 + 11) & 0xff;
  return bytes;
}

// A VP8 keyframe header (frame tag: keyframe, show_frame, first partition 100; start code;
// 640x360) and a delta frame's tag.
const KEY = [0x90, 0x0c, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
const DELTA = [0x91, 0x0c, 0x00];

const cases = [];
const add = (name, codec, bytes) =>
  cases.push({ name, codec, frame: toHex(bytes), clear_prefix_len: clearPrefixLength(codec, bytes) });
for (const n of [0, 1, 2, 3, 9, 10, 11, 48]) add(`vp8 keyframe, ${n} bytes`, 'vp8', frame(KEY, n));
for (const n of [1, 2, 3, 4, 48]) add(`vp8 delta frame, ${n} bytes`, 'vp8', frame(DELTA, n));
add('vp8, first byte 0x00 (keyframe bit)', 'vp8', frame([0x00], 48));
add('vp8, first byte 0xff (delta bit)', 'vp8', frame([0xff], 48));
for (const n of [0, 1, 2, 48]) add(`opus, ${n} bytes`, 'opus', frame([0xfc], n));
for (const n of [0, 48]) add(`vp9, ${n} bytes`, 'vp9', frame([0x82], n));

const out = process.argv[2];
if (!out) throw new Error('usage: clear-prefix-vectors.mjs OUT.json');
const file = {
  description:
    'Clear-prefix vectors (docs/e2ee.md §1.2), made by signaling/web/e2ee/tools/clear-prefix-vectors.mjs from media.mjs clearPrefixLength. frame: hex; clear_prefix_len: bytes left in clear.',
  cases,
};
writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
