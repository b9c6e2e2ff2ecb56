// The QR encoder of the security panel (ui/qr-code.js) in plain Node: every digit string from 1
// to the most a version 6-M code holds is drawn and decoded back by jsQR (a decoder written
// independently of it); what it cannot hold is refused.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { qrCodeOfDigits } from '../ui/qr-code.js';

const JSQR = new URL('../node_modules/jsqr/package.json', import.meta.url);
const skip = !existsSync(JSQR) && 'jsqr not installed (cd signaling/web && npm ci)';

/** RGBA pixels of `qr` at 3 pixels per module with the 4-module quiet zone. */
function pixels(qr) {
  const scale = 3;
  const quiet = 4;
  const width = (qr.size + 2 * quiet) * scale;
  const data = new Uint8ClampedArray(width * width * 4).fill(255);
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      if (!qr.dark[y][x]) continue;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const o = (((y + quiet) * scale + dy) * width + (x + quiet) * scale + dx) * 4;
          data[o] = data[o + 1] = data[o + 2] = 0;
        }
      }
    }
  }
  return { data, width };
}

test('qr_code_of_every_length_decodes', { skip }, async () => {
  const { default: jsQR } = await import('jsqr');
  const versions = new Set();
  // 255 digits is the most version 6 at level M holds (108 data bytes: 4 + 10 + 85 × 10 bits).
  for (let n = 1; n <= 255; n++) {
    const digits = Array.from({ length: n }, (_, i) => String((i * 7 + n * 3) % 10)).join('');
    const qr = qrCodeOfDigits(digits);
    versions.add(qr.version);
    assert.equal(qr.size, 17 + 4 * qr.version);
    const { data, width } = pixels(qr);
    assert.equal(jsQR(data, width, width)?.data, digits, `${n} digits (version ${qr.version}, mask ${qr.mask})`);
  }
  assert.deepEqual([...versions].sort(), [1, 2, 3, 4, 5, 6]);
  // A safety number is version 2.
  assert.equal(qrCodeOfDigits('0'.repeat(60)).version, 2);
});

test('qr_code_refuses_what_it_cannot_hold', () => {
  assert.throws(() => qrCodeOfDigits(''), TypeError);
  assert.throws(() => qrCodeOfDigits('12 34'), TypeError);
  assert.throws(() => qrCodeOfDigits(1234), TypeError);
  assert.throws(() => qrCodeOfDigits('1'.repeat(256)), RangeError);
});
