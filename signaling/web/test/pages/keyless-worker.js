// A keyless party on the SFU's path (test page `keyless.html`): it sees every frame the SFU
// forwards to it, holds no key of the call, and records what it can learn: whether each frame
// parses as `clear prefix || SFrame header` and under which KID, a short hash of each frame,
// and whether any frame opens under a key it does not have (a random one). Frames are passed on
// unchanged, so the browser's decoder gets exactly what the SFU sent.
import { decodeKid } from '../../e2ee/kid.mjs';
import { ReceiverKeyStore } from '../../e2ee/receiver.mjs';
import { decodeHeader } from '../../e2ee/sframe-header.mjs';

const seen = { frames: 0, parsed: 0, unparsed: 0, opened: 0, bytes: 0, kinds: {}, kids: {}, hashes: [] };
const guess = new ReceiverKeyStore();
const guessed = new Set();

function hex(buf) {
  return [...new Uint8Array(buf, 0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function inspect(frame, kind) {
  const data = new Uint8Array(frame.data);
  if (data.length === 0) return;
  seen.frames += 1;
  seen.bytes += data.length;
  seen.kinds[kind] = (seen.kinds[kind] ?? 0) + 1;
  if (seen.hashes.length < 20_000) seen.hashes.push(hex(await crypto.subtle.digest('SHA-256', data)));
  // docs/e2ee.md: Opus keeps 1 clear byte, VP8 keyframes 10 and delta frames 3.
  const prefix = kind === 'audio' ? 1 : (data[0] & 1) === 0 ? 10 : 3;
  let fields;
  try {
    fields = decodeKid(decodeHeader(data.subarray(prefix)).kid);
  } catch {
    seen.unparsed += 1;
    return;
  }
  seen.parsed += 1;
  const k = `${fields.slot}/${fields.stream}/${fields.generation}/${fields.step}`;
  seen.kids[k] = (seen.kids[k] ?? 0) + 1;
  // Try to open it under a key of our own for that very KID: it must never authenticate.
  if (!guessed.has(k)) {
    guessed.add(k);
    guess.addKey({ slot: fields.slot, generation: fields.generation, step: fields.step, suite: 5, baseKey: crypto.getRandomValues(new Uint8Array(32)) }, performance.now());
  }
  try {
    await guess.decryptFrame(kind === 'audio' ? 'opus' : 'vp8', data, performance.now());
    seen.opened += 1;
  } catch {
    // expected: authentication fails
  }
}

self.addEventListener('rtctransform', (event) => {
  const t = event.transformer;
  const kind = t.options?.kind ?? 'video';
  t.readable
    .pipeThrough(new TransformStream({ async transform(frame, controller) { await inspect(frame, kind); controller.enqueue(frame); } }))
    .pipeTo(t.writable)
    .catch(() => {});
});
self.addEventListener('message', () => self.postMessage(seen));
