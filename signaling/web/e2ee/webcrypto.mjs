/**
 * The single door to WebCrypto (`globalThis.crypto`, present in browsers' secure contexts, in
 * workers and in Node 20). Every call goes through {@link guard}, which turns a WebCrypto
 * exception into an {@link E2eeError} with the code the caller chose, so no `DOMException`
 * escapes the module.
 *
 * @module webcrypto
 */
import { E2eeError, ErrorCode, fail } from './errors.mjs';

/** Returns `crypto.subtle`, or throws `crypto_unavailable` (e.g. a page not served securely). */
export function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) fail(ErrorCode.CRYPTO_UNAVAILABLE, 'WebCrypto (crypto.subtle) is not available here');
  return s;
}

/**
 * Awaits `fn(subtle)`; an E2eeError passes through, any other exception becomes
 * `E2eeError(code, message)` with the original as `cause`.
 */
export async function guard(code, message, fn) {
  const s = subtle();
  try {
    return await fn(s);
  } catch (err) {
    if (err instanceof E2eeError) throw err;
    return fail(code, message, err);
  }
}

/** `n` bytes from the platform CSPRNG. */
export function randomBytes(n) {
  const c = globalThis.crypto;
  if (!c?.getRandomValues) fail(ErrorCode.CRYPTO_UNAVAILABLE, 'crypto.getRandomValues missing');
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let off = 0; off < n; off += 65536) c.getRandomValues(out.subarray(off, off + 65536));
  return out;
}
