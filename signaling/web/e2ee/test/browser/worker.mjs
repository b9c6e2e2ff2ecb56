// A module worker, like the RTCRtpScriptTransform worker of the web client: encrypt VP8 and
// Opus frames with SenderContext and decrypt them with ReceiverKeyStore, then report.
import { encodeKid, Stream } from '../../kid.mjs';
import { SenderContext } from '../../media.mjs';
import { ReceiverKeyStore } from '../../receiver.mjs';

try {
  const baseKey = crypto.getRandomValues(new Uint8Array(32));
  const store = new ReceiverKeyStore();
  store.addKey({ slot: 9, generation: 1, step: 0, suite: 5, baseKey }, 0);
  const video = await SenderContext.create({ baseKey, kid: encodeKid({ slot: 9, stream: Stream.CAMERA, generation: 1, step: 0 }) });
  const audio = await SenderContext.create({ baseKey, kid: encodeKid({ slot: 9, stream: Stream.AUDIO, generation: 1, step: 0 }) });
  for (let i = 0; i < 200; i++) {
    const frame = crypto.getRandomValues(new Uint8Array(i % 2 ? 1200 : 60));
    if (i % 30 === 0) frame[0] &= 0xfe;
    else frame[0] |= 1;
    const [sender, codec] = i % 2 ? [video, 'vp8'] : [audio, 'opus'];
    const got = await store.decryptFrame(codec, await sender.encryptFrame(codec, frame), i * 20);
    if (got.frame.length !== frame.length || got.frame.some((b, j) => b !== frame[j])) throw new Error(`frame ${i} differs`);
  }
  self.postMessage({ ok: true });
} catch (err) {
  self.postMessage({ ok: false, error: `${err?.code ?? ''} ${err?.message}` });
}
