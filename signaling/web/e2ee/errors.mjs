/**
 * Typed errors of the E2EE module.
 *
 * Every failure the module reports is an {@link E2eeError} whose `code` is one of the stable
 * strings in {@link ErrorCode}; callers (and the web client's stats, which count decrypt failures
 * by kind) switch on the code, never on the message. Bad input never surfaces as a plain `Error`,
 * `TypeError` or a WebCrypto `DOMException`: those are caught at the boundary and mapped here.
 *
 * @module errors
 */

/** Stable error codes, one per failure kind. */
export const ErrorCode = Object.freeze({
  /** An argument has the wrong type or is out of its documented range (a caller bug). */
  INVALID_ARGUMENT: 'invalid_argument',
  /** The SFrame header is cut short (its KID or CTR bytes are missing). */
  TRUNCATED_HEADER: 'truncated_header',
  /** The SFrame ciphertext is shorter than the suite's authentication tag. */
  TRUNCATED_CIPHERTEXT: 'truncated_ciphertext',
  /** A media frame is empty or too short to hold its clear prefix and an SFrame. */
  TRUNCATED_FRAME: 'truncated_frame',
  /** A KID has bits 40..63 set or a field out of range (docs/e2ee.md §1.1). */
  BAD_KID: 'bad_kid',
  /** No key is held for this KID (unknown sender, generation, or evicted generation). */
  UNKNOWN_KID: 'unknown_kid',
  /** The KID's ratchet step is beyond the bounded look-ahead (more than 16 steps ahead). */
  RATCHET_OUT_OF_RANGE: 'ratchet_out_of_range',
  /** The KID's ratchet step was ratcheted past (forward secrecy) and its grace period is over. */
  KEY_EXPIRED: 'key_expired',
  /** The frame's counter was already authenticated, or is below the replay window. */
  REPLAY: 'replay',
  /** Authentication failed: wrong key, tampered header, metadata, ciphertext or tag. */
  AUTH_FAILED: 'auth_failed',
  /** An Ed25519 signature (bundle or envelope) does not verify. */
  BAD_SIGNATURE: 'bad_signature',
  /** A key envelope is addressed to another device. */
  WRONG_RECIPIENT: 'wrong_recipient',
  /** A key envelope names another room or call than the current one. */
  WRONG_CONTEXT: 'wrong_context',
  /** A key envelope's sender does not match the bundle it is verified against. */
  WRONG_SENDER: 'wrong_sender',
  /** The SFrame cipher suite id is not one of 0x0001..0x0005. */
  UNSUPPORTED_SUITE: 'unsupported_suite',
  /** The wire format version is not 1. */
  UNSUPPORTED_VERSION: 'unsupported_version',
  /** The codec has no clear-prefix rule (H.264, AV1, anything unknown). */
  UNSUPPORTED_CODEC: 'unsupported_codec',
  /** The sender's counter would wrap: it refuses to reuse a nonce. */
  COUNTER_EXHAUSTED: 'counter_exhausted',
  /** A JSON wire object (bundle, envelope) has a missing, mistyped or out-of-range field. */
  MALFORMED: 'malformed',
  /** A base64url field is not canonical RFC 4648 §5 without padding. */
  BAD_BASE64: 'bad_base64',
  /** A hex string is not an even number of hex digits. */
  BAD_HEX: 'bad_hex',
  /** A length-prefixed field is longer than 65,535 bytes. */
  FIELD_TOO_LONG: 'field_too_long',
  /** A device id is not 1..64 characters of `[A-Za-z0-9_-]`. */
  BAD_DEVICE_ID: 'bad_device_id',
  /** A public or private key has the wrong length or is rejected (e.g. X25519 low order). */
  BAD_KEY: 'bad_key',
  /** WebCrypto refused an operation on valid input (missing algorithm support). */
  CRYPTO_UNAVAILABLE: 'crypto_unavailable',
});

const KNOWN_CODES = new Set(Object.values(ErrorCode));

/** The one error type this module throws. `code` is stable; `message` is for humans. */
export class E2eeError extends Error {
  /**
   * @param {string} code one of {@link ErrorCode}
   * @param {string} message human-readable detail (never contains key material)
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    if (!KNOWN_CODES.has(code)) {
      throw new TypeError(`E2eeError: unknown code ${code}`);
    }
    this.name = 'E2eeError';
    /** @type {string} */
    this.code = code;
  }
}

/** Shorthand: throw an {@link E2eeError}. */
export function fail(code, message, cause) {
  throw new E2eeError(code, message, cause === undefined ? undefined : { cause });
}

/** True if `err` is an {@link E2eeError} (optionally with the given code). */
export function isE2eeError(err, code) {
  return err instanceof E2eeError && (code === undefined || err.code === code);
}
