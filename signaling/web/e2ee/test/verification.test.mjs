// Safety numbers and call security codes (docs/e2ee.md §4), checked against a second,
// synchronous implementation of the spec text on node:crypto, and for their properties.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { concat, compareBytes, lp, u16, utf8 } from '../bytes.mjs';
import { formatDigitGroups, safetyNumber, securityCode } from '../verification.mjs';
import { rejectsWithCode, seededRandom } from './helpers.mjs';

const rng = seededRandom(50);

function digitsOf(bytes, groups) {
  let out = '';
  for (let i = 0; i < groups; i++) out += (Number(BigInt(`0x${Buffer.from(bytes.subarray(5 * i, 5 * i + 5)).toString('hex')}`) % 100000n)).toString().padStart(5, '0');
  return out;
}

function referenceHalf(device, ik) {
  let h = createHash('sha512').update(concat(u16(0), ik, utf8(device))).digest();
  for (let i = 0; i < 5200; i++) h = createHash('sha512').update(h).update(ik).digest();
  return digitsOf(new Uint8Array(h), 6);
}

function referenceCode(room, call, roster) {
  const entries = roster.map((r) => concat(lp(r.device), r.identityKey, lp(r.role), u16(r.slot))).sort(compareBytes);
  const h = createHash('sha256').update(concat(utf8('e2ee-sfu/security-code/v1'), lp(room), lp(call), u16(entries.length), ...entries)).digest();
  return digitsOf(new Uint8Array(h), 5);
}

const device = () => ({ device: `dev-${rng.int(1e6)}`, identityKey: rng.bytes(32) });

test('safety number: matches the spec text, 60 digits, same from both sides', async () => {
  for (let i = 0; i < 2; i++) {
    const a = device();
    const b = device();
    const n = await safetyNumber(a, b);
    const [x, y] = [referenceHalf(a.device, a.identityKey), referenceHalf(b.device, b.identityKey)];
    assert.equal(n, x < y ? x + y : y + x);
    assert.match(n, /^\d{60}$/);
    assert.equal(await safetyNumber(b, a), n);
    assert.equal(formatDigitGroups(n).split(' ').length, 12);
  }
});

test('safety number: changes with either identity key or device id', async () => {
  const a = device();
  const b = device();
  const n = await safetyNumber(a, b);
  const otherKey = Uint8Array.from(a.identityKey);
  otherKey[31] ^= 1;
  assert.notEqual(await safetyNumber({ ...a, identityKey: otherKey }, b), n);
  assert.notEqual(await safetyNumber({ ...a, device: `${a.device}x` }, b), n);
  await rejectsWithCode(safetyNumber({ ...a, identityKey: new Uint8Array(33) }, b), 'bad_key');
  await rejectsWithCode(safetyNumber({ ...a, device: '' }, b), 'bad_device_id');
});

test('security code: matches the spec text, 25 digits, independent of roster order, bound to every field', async () => {
  const roster = Array.from({ length: 6 }, (_, i) => ({ ...device(), role: rng.pick(['caller', 'presenter', 'viewer', 'recorder']), slot: i + 1 }));
  const code = await securityCode({ room: 'standup', call: 'c-1', roster });
  assert.equal(code, referenceCode('standup', 'c-1', roster));
  assert.match(code, /^\d{25}$/);
  assert.equal(formatDigitGroups(code), code.match(/.{5}/g).join(' '));
  for (let i = 0; i < 5; i++) {
    const shuffled = [...roster].sort(() => rng.next() - 0.5);
    assert.equal(await securityCode({ room: 'standup', call: 'c-1', roster: shuffled }), code);
  }
  const variants = [
    { room: 'standup2', call: 'c-1', roster },
    { room: 'standup', call: 'c-2', roster },
    { room: 'standup', call: 'c-1', roster: roster.slice(1) },
    { room: 'standup', call: 'c-1', roster: [{ ...roster[0], role: 'recorder' === roster[0].role ? 'viewer' : 'recorder' }, ...roster.slice(1)] },
    { room: 'standup', call: 'c-1', roster: [{ ...roster[0], slot: 99 }, ...roster.slice(1)] },
    { room: 'standup', call: 'c-1', roster: [{ ...roster[0], identityKey: rng.bytes(32) }, ...roster.slice(1)] },
  ];
  for (const v of variants) assert.notEqual(await securityCode(v), code);
  await rejectsWithCode(securityCode({ room: 'r', call: 'c', roster: 'nope' }), 'invalid_argument');
  await rejectsWithCode(securityCode({ room: 'r', call: 'c', roster: [{ ...roster[0], slot: 70000 }] }), 'invalid_argument');
  await rejectsWithCode(securityCode({ room: 'r', call: 'c', roster: [{ ...roster[0], identityKey: 'k' }] }), 'invalid_argument');
});
