/**
 * Chat messages (docs/e2ee.md §6), the twin of the Rust `e2ee_frames::chat`: a message is sealed
 * with AES-256-GCM under `HKDF-SHA256("", base_key, "e2ee-sfu chat v1", 32)`, where `base_key`
 * is the sender's current SFrame base key (never the media key itself), with a random 12-byte
 * nonce; the AAD binds the room, call, sender device and slot, generation and step.
 *
 * @module chat
 */
import { concat, fromBase64Url, lp, toBase64Url, u16, u8, utf8 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { hkdf } from './hkdf.mjs';
import { b64Field, checkWireObject, field, WIRE_VERSION } from './identity.mjs';
import { MAX_GENERATION, MAX_STEP } from './kid.mjs';
import { guard, randomBytes } from './webcrypto.mjs';

/** The HKDF `info` of the chat key. */
export const CHAT_KEY_LABEL = 'e2ee-sfu chat v1';
const AAD_LABEL = utf8('e2ee-sfu/chat-aad/v1');
/** GCM tag length at the end of `ct`. */
export const CHAT_TAG_LENGTH = 16;
/** Largest `ct` (ciphertext and tag). */
export const MAX_CHAT_CIPHERTEXT_BYTES = 4096;
/** Largest plaintext (UTF-8 bytes) that fits. */
export const MAX_CHAT_PLAINTEXT_BYTES = MAX_CHAT_CIPHERTEXT_BYTES - CHAT_TAG_LENGTH;
const NONCE_LENGTH = 12;

/**
 * @typedef {object} ChatContext
 * @property {string} room
 * @property {string} call
 * @property {string} sender sending device id
 * @property {number} slot the sender's slot
 */

/** The 32-byte chat key of a base key. */
export function deriveChatKey(baseKey) {
  return hkdf('SHA-256', new Uint8Array(0), baseKey, utf8(CHAT_KEY_LABEL), 32);
}

/** `"e2ee-sfu/chat-aad/v1" || lp(room) || lp(call) || lp(sender) || u16(slot) || u16(generation) || u8(step)`. */
export function chatAad(ctx, generation, step) {
  return concat(AAD_LABEL, lp(utf8(ctx.room)), lp(utf8(ctx.call)), lp(utf8(ctx.sender)), u16(ctx.slot), u16(generation), u8(step));
}

async function aesKey(baseKey, usage) {
  const raw = await deriveChatKey(baseKey);
  return guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-GCM key import failed', (s) => s.importKey('raw', raw, 'AES-GCM', false, [usage]));
}

/**
 * Seals `text` (a string, sent as UTF-8, or bytes) under the base key of (`generation`, `step`).
 * `nonce` is for test vectors only; by default 12 random bytes. Returns the wire form.
 */
export async function sealChat(baseKey, ctx, { generation, step }, text, nonce = randomBytes(NONCE_LENGTH)) {
  const plaintext = typeof text === 'string' ? utf8(text) : text;
  if (plaintext.length > MAX_CHAT_PLAINTEXT_BYTES) fail(ErrorCode.INVALID_ARGUMENT, `chat message over ${MAX_CHAT_PLAINTEXT_BYTES} bytes`);
  if (!Number.isInteger(generation) || generation < 0 || generation > MAX_GENERATION) fail(ErrorCode.INVALID_ARGUMENT, 'generation out of range');
  if (!Number.isInteger(step) || step < 0 || step > MAX_STEP) fail(ErrorCode.INVALID_ARGUMENT, 'step out of range');
  const key = await aesKey(baseKey, 'encrypt');
  const ct = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-GCM seal failed', (s) =>
    s.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: chatAad(ctx, generation, step), tagLength: 128 }, key, plaintext),
  );
  return { v: WIRE_VERSION, generation, step, nonce: toBase64Url(nonce), ct: toBase64Url(new Uint8Array(ct)) };
}

/** Reads the wire form's fields: `{generation, step, nonce, ct}` (errors: `malformed`, `unsupported_version`). */
export function parseChat(sealed) {
  checkWireObject(sealed, 'chat message');
  const generation = field(sealed, 'generation', 'integer');
  const step = field(sealed, 'step', 'integer');
  if (generation < 0 || generation > MAX_GENERATION || step < 0 || step > MAX_STEP) fail(ErrorCode.MALFORMED, 'generation or step out of range');
  const nonce = b64Field(sealed, 'nonce', NONCE_LENGTH);
  const ct = fromBase64Url(field(sealed, 'ct', 'string'));
  if (ct.length < CHAT_TAG_LENGTH || ct.length > MAX_CHAT_CIPHERTEXT_BYTES) fail(ErrorCode.MALFORMED, 'chat ct length out of bounds');
  return { generation, step, nonce, ct };
}

/**
 * Opens a sealed chat message with the sender's base key of its generation and step; returns
 * the plaintext bytes. Errors: `malformed`, `unsupported_version`, `auth_failed`.
 */
export async function openChat(baseKey, ctx, sealed) {
  const { generation, step, nonce, ct } = parseChat(sealed);
  const key = await aesKey(baseKey, 'decrypt');
  try {
    const pt = await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: chatAad(ctx, generation, step), tagLength: 128 }, key, ct);
    return new Uint8Array(pt);
  } catch (err) {
    return fail(ErrorCode.AUTH_FAILED, 'chat message does not authenticate', err);
  }
}
