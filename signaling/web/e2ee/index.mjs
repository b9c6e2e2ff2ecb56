/**
 * The browser E2EE module (docs/e2ee.md): SFrame media encryption, key envelopes, device
 * identities, verification codes and chat messages, on WebCrypto only. Import this file, or the individual
 * modules when a worker needs only part (an `RTCRtpScriptTransform` worker needs
 * `media.mjs` and `receiver.mjs`).
 *
 * @module e2ee
 */
export { E2eeError, ErrorCode, isE2eeError } from './errors.mjs';
export { fromBase64Url, fromHex, toBase64Url, toHex } from './bytes.mjs';
export { ALL_SUITES, DEFAULT_SUITE, Suite, suiteParams } from './suites.mjs';
export { decodeHeader, encodeHeader, MAX_HEADER_LENGTH } from './sframe-header.mjs';
export { aeadOpen, aeadSeal, importAeadKey } from './sframe-aead.mjs';
export { deriveKeyMaterial, MAX_COUNTER, ratchetBaseKey, ratchetBaseKeyBy, SframeKey } from './sframe.mjs';
export { decodeKid, encodeKid, keyIdOf, MAX_GENERATION, MAX_SLOT, MAX_STEP, Stream } from './kid.mjs';
export {
  clearPrefixLength,
  Codec,
  decryptMediaFrameWithKey,
  encryptMediaFrame,
  isVp8Keyframe,
  normalizeCodec,
  PREFIX_LENGTH,
  SenderContext,
} from './media.mjs';
export { RECEIVER_DEFAULTS, ReceiverKeyStore, ReplayWindow } from './receiver.mjs';
export {
  deriveX25519KeyPair,
  exportX25519PrivateKey,
  generateX25519KeyPair,
  HpkeAead,
  HpkeContext,
  hpkeOpen,
  hpkeSeal,
  importX25519PrivateKey,
  setupBaseR,
  setupBaseS,
  x25519PublicKeyOf,
} from './hpke.mjs';
export {
  checkDeviceId,
  createBundle,
  generateDeviceIdentity,
  randomDeviceId,
  signWithIdentity,
  verifyBundle,
  verifyEd25519,
} from './identity.mjs';
export { BASE_KEY_LENGTH, createEnvelope, envelopeKeyLength, envelopeAad, envelopeInfo, openEnvelope, parseEnvelope } from './envelope.mjs';
export { fingerprintHalf, formatDigitGroups, safetyNumber, securityCode } from './verification.mjs';
export { EMOJI_TABLE, emojiSequence, halfIndices, pairVerification, SYMBOLS_PER_HALF } from './emoji.mjs';
export { chatAad, deriveChatKey, MAX_CHAT_CIPHERTEXT_BYTES, MAX_CHAT_PLAINTEXT_BYTES, openChat, parseChat, sealChat } from './chat.mjs';
