#!/usr/bin/env node
/**
 * Per-frame cost of the media path on this machine's WebCrypto (not a test; prints figures):
 *   node signaling/web/e2ee/tools/bench.mjs [frames]
 * Encrypts `frames` VP8 delta frames of 1,200 bytes and Opus frames of 100 bytes with
 * SenderContext and decrypts them with ReceiverKeyStore, for suites 5 (default) and 1.
 */
import { encodeKid, Stream } from '../kid.mjs';
import { SenderContext } from '../media.mjs';
import { ReceiverKeyStore } from '../receiver.mjs';
import { randomBytes } from '../webcrypto.mjs';

const frames = Number(process.argv[2] ?? 5000);
for (const suite of [5, 1]) {
  for (const [codec, size, stream] of [['vp8', 1200, Stream.CAMERA], ['opus', 100, Stream.AUDIO]]) {
    const baseKey = randomBytes(32);
    const sender = await SenderContext.create({ suite, baseKey, kid: encodeKid({ slot: 1, stream, generation: 0, step: 0 }) });
    const store = new ReceiverKeyStore();
    store.addKey({ slot: 1, generation: 0, step: 0, suite, baseKey }, 0);
    const frame = randomBytes(size);
    frame[0] |= 1;
    const wires = [];
    let t = performance.now();
    for (let i = 0; i < frames; i++) wires.push(await sender.encryptFrame(codec, frame));
    const enc = ((performance.now() - t) * 1000) / frames;
    t = performance.now();
    for (const wire of wires) await store.decryptFrame(codec, wire, 0);
    const dec = ((performance.now() - t) * 1000) / frames;
    console.log(`suite ${suite} ${codec} ${size} B: encrypt ${enc.toFixed(1)} µs/frame, decrypt ${dec.toFixed(1)} µs/frame`);
  }
}
