/**
 * Builds a cross-implementation fixture object (docs/e2ee.md §5) with fresh random keys.
 * Platform-neutral; tools/cross-fixtures.mjs writes it to a file.
 *
 * @module tools/make-fixtures
 */
import { toHex } from '../bytes.mjs';
import { createEnvelope } from '../envelope.mjs';
import { exportX25519PrivateKey } from '../hpke.mjs';
import { createBundle, generateDeviceIdentity } from '../identity.mjs';
import { encodeKid, Stream } from '../kid.mjs';
import { encryptMediaFrame } from '../media.mjs';
import { ratchetBaseKeyBy, SframeKey } from '../sframe.mjs';
import { ALL_SUITES } from '../suites.mjs';
import { safetyNumber, securityCode } from '../verification.mjs';
import { randomBytes } from '../webcrypto.mjs';

function randomInt(max) {
  // Uniform enough for test data: 32 random bits mod max (max small).
  return new DataView(randomBytes(4).buffer).getUint32(0) % (max + 1);
}

function randomU64() {
  return new DataView(randomBytes(8).buffer).getBigUint64(0);
}

function randomKid() {
  return encodeKid({ slot: randomInt(4095), stream: randomInt(3), generation: randomInt(65535), step: randomInt(255) });
}

async function sframeCases() {
  const cases = [];
  for (const suite of ALL_SUITES) {
    // A small KID and counter, a layout KID with a mid-size counter, and full 64-bit values.
    for (const [kid, ctr] of [[BigInt(randomInt(7)), BigInt(randomInt(7))], [BigInt(randomKid()), BigInt(randomInt(1 << 30))], [randomU64(), randomU64()]]) {
      const baseKey = randomBytes([16, 32, 64][randomInt(2)]);
      const metadata = randomBytes(randomInt(12));
      const plaintext = randomBytes(randomInt(200));
      const key = await SframeKey.derive(suite, baseKey, kid);
      cases.push({
        suite, base_key: toHex(baseKey), kid, ctr,
        metadata: toHex(metadata), plaintext: toHex(plaintext),
        ciphertext: toHex(await key.encrypt(ctr, metadata, plaintext)),
      });
    }
  }
  return cases;
}

function vp8Frame(keyframe, length) {
  const frame = randomBytes(length);
  frame[0] = keyframe ? frame[0] & 0xfe : frame[0] | 1;
  return frame;
}

async function mediaCases() {
  // [codec, stream, suite, frame]: the default suite for the common frames, the others too.
  const frames = [
    ['vp8', Stream.CAMERA, 5, vp8Frame(true, 300)],
    ['vp8', Stream.CAMERA, 5, vp8Frame(false, 120)],
    ['vp8', Stream.SCREEN_VIDEO, 4, vp8Frame(true, 10)],
    ['opus', Stream.AUDIO, 5, randomBytes(80)],
    ['opus', Stream.SCREEN_AUDIO, 1, randomBytes(1)],
    // Shorter than its prefix: sent whole as prefix with an empty plaintext (docs/e2ee.md §1.2).
    ['vp8', Stream.CAMERA, 2, vp8Frame(true, 6)],
    ['vp8', Stream.CAMERA, 3, vp8Frame(false, 2)],
  ];
  const cases = [];
  for (const [codec, stream, suite, frame] of frames) {
    const kid = encodeKid({ slot: randomInt(4095), stream, generation: randomInt(65535), step: randomInt(255) });
    const ctr = BigInt(randomInt(100000));
    const baseKey = randomBytes(32);
    const key = await SframeKey.derive(suite, baseKey, kid);
    cases.push({
      codec, suite, base_key: toHex(baseKey), kid, ctr,
      frame: toHex(frame), wire: toHex(await encryptMediaFrame(key, ctr, codec, frame)),
    });
  }
  return cases;
}

async function ratchetCases() {
  const cases = [];
  for (const suite of ALL_SUITES) {
    const baseKey = randomBytes(32);
    const steps = 1 + randomInt(4);
    cases.push({ suite, base_key: toHex(baseKey), steps, ratcheted: toHex(await ratchetBaseKeyBy(suite, baseKey, steps)) });
  }
  return cases;
}

function kidCases() {
  const fields = [
    { slot: 0, stream: 0, generation: 0, step: 0 },
    { slot: 4095, stream: 3, generation: 65535, step: 255 },
    ...Array.from({ length: 4 }, () => ({ slot: randomInt(4095), stream: randomInt(3), generation: randomInt(65535), step: randomInt(255) })),
  ];
  return fields.map((f) => ({ ...f, kid: encodeKid(f) }));
}

/** Builds the whole fixture object (`generator: "js"`). */
export async function makeFixtures() {
  const devices = await Promise.all(
    ['dev-alice', 'dev-bob', 'dev-carol'].map((deviceId) => generateDeviceIdentity({ deviceId: `${deviceId}-${randomInt(9999)}`, extractable: true })),
  );
  const bundles = await Promise.all(devices.map(createBundle));
  const envelopes = [];
  const pairs = [[0, 1, 5], [1, 2, 5], [2, 0, 4]];
  for (const [s, r, suite] of pairs) {
    // Step 0 carries the drawn 32-byte key; a later step carries the ratcheted key (Nh bytes).
    const step = envelopes.length === 0 ? 0 : 1 + randomInt(254);
    const baseKey = step === 0 ? randomBytes(32) : await ratchetBaseKeyBy(suite, randomBytes(32), step);
    const room = 'standup';
    const call = `c-${toHex(randomBytes(4))}`;
    const envelope = await createEnvelope({
      room, call, sender: devices[s], recipientBundle: bundles[r],
      slot: randomInt(4095), generation: randomInt(65535), step, suite, baseKey,
    });
    envelopes.push({
      room, call, sender_bundle: bundles[s], recipient_bundle: bundles[r],
      recipient_hpke_private: toHex(await exportX25519PrivateKey(devices[r].hpke.privateKey)),
      envelope, base_key: toHex(baseKey),
    });
  }
  const side = (d) => ({ device: d.deviceId, identity_key: toHex(d.identity.publicKey) });
  const asInput = (d) => ({ device: d.deviceId, identityKey: d.identity.publicKey });
  const safety = [];
  for (const [a, b] of [[0, 1], [2, 0]]) {
    safety.push({ a: side(devices[a]), b: side(devices[b]), number: await safetyNumber(asInput(devices[a]), asInput(devices[b])) });
  }
  const roles = ['caller', 'presenter', 'viewer', 'recorder'];
  const codes = [];
  for (const members of [[0, 1, 2], [1, 0]]) {
    const roster = members.map((m, i) => ({ ...side(devices[m]), role: roles[(m + i) % roles.length], slot: randomInt(4095) }));
    const room = `room-${randomInt(999)}`;
    const call = `c-${toHex(randomBytes(4))}`;
    const code = await securityCode({
      room, call, roster: roster.map((r, i) => ({ ...asInput(devices[members[i]]), role: r.role, slot: r.slot })),
    });
    codes.push({ room, call, roster, code });
  }
  return {
    generator: 'js',
    sframe: await sframeCases(),
    media: await mediaCases(),
    ratchet: await ratchetCases(),
    kid: kidCases(),
    bundles: bundles.map((bundle) => ({ bundle })),
    envelopes,
    safety_numbers: safety,
    security_codes: codes,
  };
}
