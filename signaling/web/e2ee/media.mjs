/**
 * Media frames (docs/e2ee.md §1.2): `clear_prefix || sframe_header || ciphertext || tag`, where
 * the codec-aware clear prefix (VP8 keyframe 10 bytes, VP8 delta 3, Opus 1, VP9 0) is the SFrame
 * metadata, so the SFU can read it and nobody can change it.
 *
 * Sending: {@link SenderContext} owns one KID's key and counter. Receiving: see
 * {@link import('./receiver.mjs').ReceiverKeyStore}, or {@link decryptMediaFrameWithKey} for one
 * known key.
 *
 * @module media
 */
import { asBytes, asU64, concat, U64_MAX } from './bytes.mjs';
import { E2eeError, ErrorCode, fail } from './errors.mjs';
import { MAX_HEADER_LENGTH, decodeHeader } from './sframe-header.mjs';
import { SframeKey } from './sframe.mjs';
import { DEFAULT_SUITE } from './suites.mjs';

/** Codecs with a defined clear prefix. */
export const Codec = Object.freeze({ VP8: 'vp8', VP9: 'vp9', OPUS: 'opus' });

/** Prefix lengths of docs/e2ee.md §1.2. */
export const PREFIX_LENGTH = Object.freeze({ VP8_KEYFRAME: 10, VP8_DELTA: 3, OPUS: 1, VP9: 0 });

const REFUSED_CODECS = new Set(['h264', 'avc', 'h265', 'hevc', 'av1']);
const LONGEST_TAG = 16;

/**
 * Normalises a codec name (`"vp8"`, `"VP8"`, `"video/VP8"`, `"audio/opus"`) to a {@link Codec}
 * value. H.264, H.265, AV1 and unknown codecs: `unsupported_codec`.
 */
export function normalizeCodec(codec) {
  if (typeof codec !== 'string') fail(ErrorCode.UNSUPPORTED_CODEC, 'codec must be a string');
  const name = codec.toLowerCase().replace(/^(video|audio)\//, '');
  if (name === Codec.VP8 || name === Codec.VP9 || name === Codec.OPUS) return name;
  if (REFUSED_CODECS.has(name)) fail(ErrorCode.UNSUPPORTED_CODEC, `${codec} is refused in E2EE rooms`);
  return fail(ErrorCode.UNSUPPORTED_CODEC, `no clear-prefix rule for codec ${codec}`);
}

/** True if a VP8 frame starting with `firstByte` is a keyframe (bit 0 of the frame tag is 0). */
export function isVp8Keyframe(firstByte) {
  return (firstByte & 1) === 0;
}

function nominalPrefixLength(codec, firstByte) {
  switch (codec) {
    case Codec.VP8:
      return isVp8Keyframe(firstByte) ? PREFIX_LENGTH.VP8_KEYFRAME : PREFIX_LENGTH.VP8_DELTA;
    case Codec.OPUS:
      return PREFIX_LENGTH.OPUS;
    default:
      return PREFIX_LENGTH.VP9;
  }
}

/**
 * The clear-prefix length for an unencrypted `frame` of `codec`: the codec's prefix length, or
 * the whole frame when it is shorter (docs/e2ee.md §1.2).
 */
export function clearPrefixLength(codec, frame) {
  const c = normalizeCodec(codec);
  const bytes = asBytes(frame, 'frame');
  if (bytes.length === 0) return 0;
  return Math.min(nominalPrefixLength(c, bytes[0]), bytes.length);
}

/**
 * Encrypts one encoded frame with `key` and counter `ctr`: returns `prefix || sframe`. The caller
 * must never reuse `ctr` with `key`; {@link SenderContext} does that bookkeeping.
 */
export async function encryptMediaFrame(key, ctr, codec, frame) {
  const bytes = asBytes(frame, 'frame');
  const p = clearPrefixLength(codec, bytes);
  const prefix = bytes.subarray(0, p);
  return concat(prefix, await key.encrypt(ctr, prefix, bytes.subarray(p)));
}

/**
 * The sending side of one KID: its SFrame key and a counter that starts at `counter` (default 0),
 * grows by one per frame, is reserved before any await (so concurrent calls never share one) and
 * never wraps: past 2^64 - 1 every call throws `counter_exhausted`. Start a new generation long
 * before that.
 */
export class SenderContext {
  /** @param {SframeKey} key  @param {bigint|number} [counter] first counter to use */
  constructor(key, counter = 0n) {
    if (!(key instanceof SframeKey)) fail(ErrorCode.INVALID_ARGUMENT, 'key must be an SframeKey');
    /** The SFrame key of this KID. */
    this.key = key;
    this._next = asU64(counter, 'counter');
    this._exhausted = false;
  }

  /** Derives the key of (`suite`, `baseKey`, `kid`) and returns a context for it. */
  static async create({ suite = DEFAULT_SUITE, baseKey, kid, counter = 0n }) {
    return new SenderContext(await SframeKey.derive(suite, baseKey, kid), counter);
  }

  /** The KID frames are sent under. */
  get kid() {
    return this.key.kid;
  }

  /** The counter the next frame will use, or null once exhausted. */
  get nextCounter() {
    return this._exhausted ? null : this._next;
  }

  /** Reserves and returns the next counter; throws `counter_exhausted` once 2^64 - 1 was used. */
  takeCounter() {
    if (this._exhausted) fail(ErrorCode.COUNTER_EXHAUSTED, 'SFrame counter exhausted for this KID');
    const ctr = this._next;
    if (ctr === U64_MAX) this._exhausted = true;
    else this._next = ctr + 1n;
    return ctr;
  }

  /** Encrypts `plaintext` with `metadata` as one SFrame (`header || ct || tag`). */
  encrypt(plaintext, metadata) {
    const pt = asBytes(plaintext, 'plaintext');
    const meta = asBytes(metadata ?? new Uint8Array(0), 'metadata');
    const ctr = this.takeCounter();
    return this.key.encrypt(ctr, meta, pt);
  }

  /** Encrypts one encoded media frame of `codec`: returns `prefix || sframe`. */
  encryptFrame(codec, frame) {
    normalizeCodec(codec);
    asBytes(frame, 'frame');
    const ctr = this.takeCounter();
    return encryptMediaFrame(this.key, ctr, codec, frame);
  }
}

/**
 * How a receiver finds the prefix of `wire`. The nominal prefix length comes from the codec and,
 * for VP8, from the keyframe bit of the first byte. A frame shorter than its prefix was sent
 * whole as prefix with an empty plaintext, so shorter prefixes are candidates too, but only when
 * the rest is exactly `header || tag` (checked by the caller once the suite is known), and only
 * for tiny frames, so a normal frame costs one attempt.
 * @returns {Array<{prefixLength: number, emptyPlaintext: boolean}>}
 */
export function prefixCandidates(codec, wire) {
  const c = normalizeCodec(codec);
  if (wire.length === 0) fail(ErrorCode.TRUNCATED_FRAME, 'empty media frame');
  const nominal = nominalPrefixLength(c, wire[0]);
  const candidates = [];
  if (wire.length > nominal) candidates.push({ prefixLength: nominal, emptyPlaintext: false });
  for (let p = Math.min(nominal - 1, wire.length - 1); p >= 0; p--) {
    const rest = wire.length - p;
    if (rest <= MAX_HEADER_LENGTH + LONGEST_TAG) candidates.push({ prefixLength: p, emptyPlaintext: true });
  }
  if (candidates.length === 0) fail(ErrorCode.TRUNCATED_FRAME, 'media frame too short for its prefix');
  return candidates;
}

/**
 * Runs the candidates of {@link prefixCandidates} through `attempt(prefix, sframe,
 * emptyPlaintext)`, which returns a function finishing the decryption (replay check,
 * authentication, commit) or throws a structural error (header, KID, length). The first candidate
 * whose decryption succeeds wins. On failure the error reported is the first from a candidate that
 * got as far as authentication, else the nominal candidate's.
 */
export async function openMediaFrame(codec, wire, attempt) {
  const bytes = asBytes(wire, 'media frame');
  let structuralError = null;
  let cryptoError = null;
  for (const { prefixLength, emptyPlaintext } of prefixCandidates(codec, bytes)) {
    const prefix = bytes.subarray(0, prefixLength);
    const sframe = bytes.subarray(prefixLength);
    let finish;
    try {
      finish = await attempt(prefix, sframe, emptyPlaintext);
    } catch (err) {
      if (!(err instanceof E2eeError)) throw err;
      structuralError ??= err;
      continue;
    }
    try {
      const opened = await finish();
      return { ...opened, frame: concat(prefix, opened.plaintext), prefixLength };
    } catch (err) {
      if (!(err instanceof E2eeError)) throw err;
      cryptoError ??= err;
    }
  }
  throw cryptoError ?? structuralError;
}

/** Checks that `sframe` is exactly `header || tag` when the candidate demands an empty plaintext. */
export function checkCandidateLength(sframe, header, suite, emptyPlaintext) {
  if (emptyPlaintext && sframe.length !== header.length + suite.nt) {
    fail(ErrorCode.TRUNCATED_FRAME, 'short-frame candidate does not fit header || tag');
  }
}

/**
 * Decrypts a media frame made with one known key (no replay protection: use
 * {@link import('./receiver.mjs').ReceiverKeyStore} for received media).
 * @returns {Promise<{frame: Uint8Array, plaintext: Uint8Array, kid: bigint, ctr: bigint, prefixLength: number}>}
 */
export function decryptMediaFrameWithKey(key, codec, wire) {
  return openMediaFrame(codec, wire, (prefix, sframe, emptyPlaintext) => {
    const header = decodeHeader(sframe);
    if (header.kid !== key.kid) fail(ErrorCode.UNKNOWN_KID, 'SFrame KID does not match this key');
    checkCandidateLength(sframe, header, key.suite, emptyPlaintext);
    return async () => ({
      plaintext: await key.openWithHeader(header, sframe, prefix),
      kid: header.kid,
      ctr: header.ctr,
    });
  });
}
