/**
 * Checks a cross-implementation fixture file (docs/e2ee.md §5) case by case through this
 * module's public API. Platform-neutral (no Node imports) so the browser test page can use it.
 * Each check throws on disagreement; {@link fixtureCases} lists every case with its check.
 *
 * @module tools/check-fixtures
 */
import { bytesEqual, fromBase64Url, fromHex, toBase64Url, toHex } from '../bytes.mjs';
import { E2eeError } from '../errors.mjs';
import { openEnvelope } from '../envelope.mjs';
import { importX25519PrivateKey, x25519PublicKeyOf } from '../hpke.mjs';
import { verifyBundle } from '../identity.mjs';
import { decodeKid, encodeKid } from '../kid.mjs';
import { decryptMediaFrameWithKey, encryptMediaFrame } from '../media.mjs';
import { ReceiverKeyStore } from '../receiver.mjs';
import { ratchetBaseKeyBy, SframeKey } from '../sframe.mjs';
import { safetyNumber, securityCode } from '../verification.mjs';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function checkBytes(actual, expectedHex, what) {
  check(bytesEqual(actual, fromHex(expectedHex)), `${what}: got ${toHex(actual)}, want ${expectedHex}`);
}

async function expectCode(promise, code, what) {
  try {
    await promise;
  } catch (err) {
    check(err instanceof E2eeError && err.code === code, `${what}: want ${code}, got ${err?.code ?? err}`);
    return;
  }
  throw new Error(`${what}: want ${code}, but it succeeded`);
}

function flipFirstBitOfB64(text) {
  const bytes = fromBase64Url(text);
  bytes[0] ^= 1;
  return toBase64Url(bytes);
}

function kidIsLayoutValid(kid) {
  try {
    decodeKid(kid);
    return true;
  } catch {
    return false;
  }
}

const CHECKS = {
  async sframe(c) {
    const key = await SframeKey.derive(c.suite, fromHex(c.base_key), c.kid);
    const opened = await key.decrypt(fromHex(c.ciphertext), fromHex(c.metadata));
    checkBytes(opened.plaintext, c.plaintext, 'decrypted plaintext');
    check(opened.ctr === BigInt(c.ctr), `header ctr ${opened.ctr} != ${c.ctr}`);
    checkBytes(await key.encrypt(c.ctr, fromHex(c.metadata), fromHex(c.plaintext)), c.ciphertext, 're-encrypted ciphertext');
  },

  async media(c) {
    const key = await SframeKey.derive(c.suite, fromHex(c.base_key), c.kid);
    checkBytes(await encryptMediaFrame(key, c.ctr, c.codec, fromHex(c.frame)), c.wire, 're-encrypted wire frame');
    checkBytes((await decryptMediaFrameWithKey(key, c.codec, fromHex(c.wire))).frame, c.frame, 'decrypted frame');
    if (kidIsLayoutValid(c.kid)) {
      const { slot, generation, step } = decodeKid(c.kid);
      const store = new ReceiverKeyStore();
      check(store.addKey({ slot, generation, step, suite: c.suite, baseKey: fromHex(c.base_key) }, 0), 'key store refused the key');
      checkBytes((await store.decryptFrame(c.codec, fromHex(c.wire), 0)).frame, c.frame, 'frame via ReceiverKeyStore');
      await expectCode(store.decryptFrame(c.codec, fromHex(c.wire), 1), 'replay', 'second delivery');
    }
  },

  async ratchet(c) {
    checkBytes(await ratchetBaseKeyBy(c.suite, fromHex(c.base_key), c.steps), c.ratcheted, 'ratcheted key');
  },

  async kid(c) {
    const fields = { slot: c.slot, stream: c.stream, generation: c.generation, step: c.step };
    check(BigInt(encodeKid(fields)) === BigInt(c.kid), `encodeKid gave ${encodeKid(fields)}, want ${c.kid}`);
    const decoded = decodeKid(BigInt(c.kid));
    for (const name of Object.keys(fields)) check(decoded[name] === fields[name], `decodeKid ${name}: ${decoded[name]} != ${fields[name]}`);
  },

  async bundles(c) {
    const verified = await verifyBundle(c.bundle);
    check(verified.device === c.bundle.device, 'bundle device');
    await expectCode(verifyBundle({ ...c.bundle, sig: flipFirstBitOfB64(c.bundle.sig) }), 'bad_signature', 'bundle with a flipped signature bit');
    await expectCode(verifyBundle({ ...c.bundle, hpke_key: flipFirstBitOfB64(c.bundle.hpke_key) }), 'bad_signature', 'bundle with a flipped HPKE key bit');
  },

  async envelopes(c) {
    const recipientBundle = await verifyBundle(c.recipient_bundle);
    const privateKey = await importX25519PrivateKey(fromHex(c.recipient_hpke_private));
    const publicKey = await x25519PublicKeyOf(privateKey);
    check(bytesEqual(publicKey, recipientBundle.hpkeKey), 'recipient_hpke_private does not match the recipient bundle');
    const recipient = { deviceId: recipientBundle.device, hpke: { privateKey, publicKey } };
    const ctx = { room: c.room, call: c.call, recipient, senderBundle: c.sender_bundle };
    const opened = await openEnvelope(c.envelope, ctx);
    checkBytes(opened.baseKey, c.base_key, 'opened base key');
    for (const name of ['room', 'call', 'sender', 'recipient', 'slot', 'generation', 'step', 'suite']) {
      check(opened[name] === c.envelope[name], `opened ${name}`);
    }
    await expectCode(openEnvelope({ ...c.envelope, sig: flipFirstBitOfB64(c.envelope.sig) }, ctx), 'bad_signature', 'envelope with a flipped signature bit');
    await expectCode(openEnvelope(c.envelope, { ...ctx, call: `${c.call}x` }), 'wrong_context', 'envelope in another call');
  },

  async safety_numbers(c) {
    const side = (s) => ({ device: s.device, identityKey: fromHex(s.identity_key) });
    check((await safetyNumber(side(c.a), side(c.b))) === c.number, 'safety number (a, b)');
    check((await safetyNumber(side(c.b), side(c.a))) === c.number, 'safety number (b, a)');
  },

  async security_codes(c) {
    const roster = c.roster.map((r) => ({ device: r.device, identityKey: fromHex(r.identity_key), role: r.role, slot: r.slot }));
    check((await securityCode({ room: c.room, call: c.call, roster })) === c.code, 'security code');
    const reversed = [...roster].reverse();
    check((await securityCode({ room: c.room, call: c.call, roster: reversed })) === c.code, 'security code (roster reversed)');
  },
};

/** The sections a fixture file must hold, with what each must cover. */
export const SECTIONS = Object.keys(CHECKS);

/**
 * Every case of `fixture` as `{name, run}`; `run()` resolves when the case agrees and throws
 * otherwise. A coverage case per section checks the lists are there and cover what §5 demands.
 */
export function fixtureCases(fixture) {
  const cases = [];
  for (const section of SECTIONS) {
    const list = fixture?.[section];
    cases.push({
      name: `${section}: present and non-empty`,
      run: async () => check(Array.isArray(list) && list.length > 0, `section ${section} missing or empty`),
    });
    if (!Array.isArray(list)) continue;
    list.forEach((c, i) => cases.push({ name: `${section}[${i}]${describe(section, c)}`, run: () => CHECKS[section](c) }));
  }
  cases.push({
    name: 'coverage: every suite in sframe, vp8 key/delta and opus in media, two envelopes',
    run: async () => {
      const suites = new Set((fixture.sframe ?? []).map((c) => c.suite));
      for (const s of [1, 2, 3, 4, 5]) check(suites.has(s), `sframe lacks suite ${s}`);
      const kinds = new Set(
        (fixture.media ?? []).map((c) => (c.codec === 'vp8' ? (fromHex(c.frame)[0] & 1 ? 'vp8-delta' : 'vp8-key') : c.codec)),
      );
      for (const k of ['vp8-key', 'vp8-delta', 'opus']) check(kinds.has(k), `media lacks ${k}`);
      check((fixture.envelopes ?? []).length >= 2, 'fewer than two envelopes');
    },
  });
  return cases;
}

function describe(section, c) {
  if (section === 'sframe' || section === 'ratchet') return ` suite ${c.suite}`;
  if (section === 'media') return ` ${c.codec} suite ${c.suite}`;
  return '';
}
