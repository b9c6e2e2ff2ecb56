// The fixture generator and checker used for the cross-implementation test, run on fixtures
// this module makes (so a disagreement with Rust can be told apart from a broken checker), and
// the command-line tool the test script runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { fixtureCases } from '../tools/check-fixtures.mjs';
import { parse, stringify } from '../tools/json64.mjs';
import { makeFixtures } from '../tools/make-fixtures.mjs';

const fixture = parse(stringify(await makeFixtures()));

describe('cross-self: JS-made fixtures through the checker', () => {
  for (const c of fixtureCases(fixture)) test(`cross-self ${c.name}`, c.run);

  test('cross-self: a changed ciphertext is caught by the checker', async () => {
    const broken = structuredClone(fixture.sframe[0]);
    broken.ciphertext = broken.ciphertext.slice(0, -2) + (broken.ciphertext.endsWith('00') ? '01' : '00');
    const [, sframeCase] = fixtureCases({ ...fixture, sframe: [broken] });
    await assert.rejects(sframeCase.run());
  });

  test('cross-self: u64 KIDs and counters survive the JSON round trip', () => {
    assert.ok(fixture.sframe.some((c) => typeof c.ctr === 'bigint' && c.ctr > BigInt(Number.MAX_SAFE_INTEGER)));
    assert.equal(stringify({ n: (1n << 64n) - 1n }, 0), '{"n":18446744073709551615}');
    assert.equal(parse('{"n":18446744073709551615,"s":"18446744073709551615","m":[-5, 1e3]}').n, (1n << 64n) - 1n);
  });
});

test('cross-fixtures.mjs writes a file of the documented shape', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-fixtures-'));
  try {
    const out = join(dir, 'sub', 'js-made.json');
    const tool = fileURLToPath(new URL('../tools/cross-fixtures.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [tool, out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const written = parse(readFileSync(out, 'utf8'));
    assert.equal(written.generator, 'js');
    for (const k of ['sframe', 'media', 'ratchet', 'kid', 'bundles', 'envelopes', 'safety_numbers', 'security_codes']) {
      assert.ok(Array.isArray(written[k]) && written[k].length > 0, k);
    }
    const usage = spawnSync(process.execPath, [tool], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
