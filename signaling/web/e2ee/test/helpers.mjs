// Shared by the node:test files: repository paths, JSON with u64, a seeded PRNG, and
// assertions on typed errors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { E2eeError } from '../errors.mjs';
import { parse } from '../tools/json64.mjs';

/** The repository root (this file is signaling/web/e2ee/test/helpers.mjs). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Reads a JSON file relative to the repository root, keeping u64 integers exact. */
export function readRepoJson(relative) {
  return parse(readFileSync(new URL(relative, `file://${REPO_ROOT}`), 'utf8'));
}

/** A small seeded PRNG (mulberry32) so property loops are reproducible. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** Float in [0, 1). */
    next,
    /** Integer in 0..=max. */
    int: (max) => Math.floor(next() * (max + 1)),
    /** `n` random bytes. */
    bytes: (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256)),
    /** Random element of `list`. */
    pick: (list) => list[Math.floor(next() * list.length)],
  };
}

/**
 * Awaits `fnOrPromise` (a promise or a function returning a value or promise) and asserts it
 * failed with an E2eeError of `code` (or any E2eeError when `code` is an array and includes it).
 */
export async function rejectsWithCode(fnOrPromise, code, what = '') {
  let result;
  try {
    result = typeof fnOrPromise === 'function' ? await fnOrPromise() : await fnOrPromise;
  } catch (err) {
    assert.ok(err instanceof E2eeError, `${what}: expected E2eeError, got ${err?.constructor?.name}: ${err?.message}`);
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(err.code), `${what}: expected ${codes.join('|')}, got ${err.code} (${err.message})`);
    return err;
  }
  assert.fail(`${what}: expected ${code} but it succeeded with ${String(result)}`);
}

/** Asserts the call throws an E2eeError (any code) — the "never untyped" property. */
export async function rejectsTyped(fnOrPromise, what = '') {
  try {
    typeof fnOrPromise === 'function' ? await fnOrPromise() : await fnOrPromise;
  } catch (err) {
    assert.ok(err instanceof E2eeError, `${what}: untyped ${err?.constructor?.name}: ${err?.message}`);
    return err;
  }
  return null;
}

/** Flips bit `bit` of a copy of `bytes`. */
export function flipBit(bytes, bit) {
  const copy = Uint8Array.from(bytes);
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}
