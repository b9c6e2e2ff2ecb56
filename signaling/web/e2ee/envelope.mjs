/**
 * Key envelopes (docs/e2ee.md §3): a sender's base key of (slot, generation, step) — 32 bytes at
 * step 0, the suite's Nh bytes once ratcheted —
 * HPKE-sealed to one recipient device (base mode, X25519 / HKDF-SHA256 / AES-256-GCM) and signed
 * with the sender's IK. Signaling relays the JSON wire form untouched and cannot open it.
 *
 * @module envelope
 */
import { asBytesOfLength, concat, lp, toBase64Url, u16, u8, utf8 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { hpkeOpen, hpkeSeal, HpkeAead, X25519_KEY_LENGTH } from './hpke.mjs';
import {
  b64Field,
  checkDeviceId,
  checkWireObject,
  ED25519_SIGNATURE_LENGTH,
  field,
  parseJson,
  signWithIdentity,
  verifyBundle,
  verifyEd25519,
  WIRE_VERSION,
} from './identity.mjs';
import { MAX_GENERATION, MAX_SLOT, MAX_STEP } from './kid.mjs';
import { suiteParams } from './suites.mjs';

/** Length of a freshly drawn base key (step 0 of a generation). */
export const BASE_KEY_LENGTH = 32;
/** AES-256-GCM tag length added to the wrapped key. */
const TAG_LENGTH = 16;

/**
 * Length of the base key an envelope carries (docs/e2ee.md §3): 32 bytes at step 0; once
 * ratcheted (RFC 9605 §5.1) the key is the suite's hash length Nh (32 or 64 bytes).
 */
export function envelopeKeyLength(suite, step) {
  return step === 0 ? BASE_KEY_LENGTH : suiteParams(suite).nh;
}

const INFO_LABEL = utf8('e2ee-sfu/hpke-info/v1');
const AAD_LABEL = utf8('e2ee-sfu/hpke-aad/v1');
const SIG_LABEL = utf8('e2ee-sfu/envelope/v1');

/**
 * @typedef {object} EnvelopeFields
 * @property {string} room
 * @property {string} call
 * @property {string} sender sender device id
 * @property {string} recipient recipient device id
 * @property {number} slot 0..4095
 * @property {number} generation 0..65535
 * @property {number} step 0..255
 * @property {number} suite SFrame suite id the key is for
 */

function checkFields(f) {
  if (typeof f.room !== 'string') fail(ErrorCode.MALFORMED, 'room must be a string');
  if (typeof f.call !== 'string') fail(ErrorCode.MALFORMED, 'call must be a string');
  checkDeviceId(f.sender);
  checkDeviceId(f.recipient);
  for (const [name, max] of [['slot', MAX_SLOT], ['generation', MAX_GENERATION], ['step', MAX_STEP]]) {
    const v = f[name];
    if (!Number.isInteger(v) || v < 0 || v > max) fail(ErrorCode.MALFORMED, `${name} must be an integer in 0..=${max}`);
  }
  suiteParams(f.suite);
  // lp() refuses fields over 65,535 bytes with field_too_long.
  lp(f.room);
  lp(f.call);
}

/** `info` = "e2ee-sfu/hpke-info/v1" || lp(room) || lp(call) || lp(sender) || lp(recipient). */
export function envelopeInfo(f) {
  return concat(INFO_LABEL, lp(f.room), lp(f.call), lp(f.sender), lp(f.recipient));
}

/** `aad` = "e2ee-sfu/hpke-aad/v1" || u16(slot) || u16(generation) || u8(step) || u16(suite). */
export function envelopeAad(f) {
  return concat(AAD_LABEL, u16(f.slot), u16(f.generation), u8(f.step), u16(f.suite));
}

/** The signed message of docs/e2ee.md §3. */
export function envelopeSignedMessage(f, enc, ct) {
  return concat(
    SIG_LABEL, lp(f.room), lp(f.call), lp(f.sender), lp(f.recipient),
    u16(f.slot), u16(f.generation), u8(f.step), u16(f.suite), lp(enc), lp(ct),
  );
}

/**
 * Seals `baseKey` (`envelopeKeyLength(suite, step)` bytes) to the device of `recipientBundle` (verified here) and signs the
 * envelope with `sender` (a DeviceIdentity). Returns the JSON wire object.
 */
export async function createEnvelope({ room, call, sender, recipientBundle, slot, generation, step = 0, suite, baseKey }) {
  const recipient = await verifyBundle(recipientBundle);
  const f = { room, call, sender: sender?.deviceId, recipient: recipient.device, slot, generation, step, suite };
  checkFields(f);
  const key = asBytesOfLength(baseKey, envelopeKeyLength(f.suite, f.step), 'base key', ErrorCode.BAD_KEY);
  const { enc, ct } = await hpkeSeal(recipient.hpkeKey, envelopeInfo(f), envelopeAad(f), key, { aead: HpkeAead.AES_256_GCM });
  const sig = await signWithIdentity(sender, envelopeSignedMessage(f, enc, ct));
  return {
    v: WIRE_VERSION, room, call, sender: f.sender, recipient: f.recipient,
    slot, generation, step, suite,
    enc: toBase64Url(enc), ct: toBase64Url(ct), sig: toBase64Url(sig),
  };
}

/**
 * Parses an envelope (JSON object or text) without verifying it.
 * @returns {EnvelopeFields & {enc: Uint8Array, ct: Uint8Array, sig: Uint8Array}}
 */
export function parseEnvelope(envelope) {
  const obj = typeof envelope === 'string' ? parseJson(envelope) : envelope;
  checkWireObject(obj, 'key envelope');
  const f = {
    room: field(obj, 'room', 'string'),
    call: field(obj, 'call', 'string'),
    sender: field(obj, 'sender', 'string'),
    recipient: field(obj, 'recipient', 'string'),
    slot: field(obj, 'slot', 'integer'),
    generation: field(obj, 'generation', 'integer'),
    step: field(obj, 'step', 'integer'),
    suite: field(obj, 'suite', 'integer'),
  };
  checkFields(f);
  return {
    ...f,
    enc: b64Field(obj, 'enc', X25519_KEY_LENGTH),
    ct: b64Field(obj, 'ct', envelopeKeyLength(f.suite, f.step) + TAG_LENGTH),
    sig: b64Field(obj, 'sig', ED25519_SIGNATURE_LENGTH),
  };
}

/**
 * Verifies and opens an envelope addressed to `recipient` (this device's DeviceIdentity) in
 * (`room`, `call`), sent by the device of `senderBundle` (from the roster; verified here). The
 * signature is checked before anything is decrypted. Errors: `malformed`, `wrong_recipient`,
 * `wrong_context`, `wrong_sender`, `bad_signature`, `auth_failed`, plus parse errors.
 * @returns {Promise<EnvelopeFields & {baseKey: Uint8Array}>}
 */
export async function openEnvelope(envelope, { room, call, recipient, senderBundle }) {
  const e = parseEnvelope(envelope);
  if (e.recipient !== recipient?.deviceId) fail(ErrorCode.WRONG_RECIPIENT, 'envelope is addressed to another device');
  if (e.room !== room || e.call !== call) fail(ErrorCode.WRONG_CONTEXT, 'envelope is for another room or call');
  const sender = await verifyBundle(senderBundle);
  if (sender.device !== e.sender) fail(ErrorCode.WRONG_SENDER, 'envelope sender does not match the bundle');
  await verifyEd25519(sender.identityKey, envelopeSignedMessage(e, e.enc, e.ct), e.sig);
  const baseKey = await hpkeOpen(e.enc, recipient.hpke, envelopeInfo(e), envelopeAad(e), e.ct, { aead: HpkeAead.AES_256_GCM });
  const { enc: _enc, ct: _ct, sig: _sig, ...fields } = e;
  return { ...fields, baseKey };
}
