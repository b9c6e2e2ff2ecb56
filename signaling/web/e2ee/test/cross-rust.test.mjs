// Cross-implementation check (docs/e2ee.md §5): every case of the fixture file made by the Rust
// crate (`cargo run -p e2ee-frames --example cross_fixtures -- target/e2ee-fixtures/rust-made.json`)
// must decrypt, verify and re-encrypt identically here. E2EE_FIXTURES_DIR overrides the directory.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixtureCases } from '../tools/check-fixtures.mjs';
import { parse } from '../tools/json64.mjs';
import { REPO_ROOT } from './helpers.mjs';

const MAKE = 'cargo run -p e2ee-frames --example cross_fixtures -- target/e2ee-fixtures/rust-made.json';
const dir = process.env.E2EE_FIXTURES_DIR || join(REPO_ROOT, 'target', 'e2ee-fixtures');
const file = join(dir, 'rust-made.json');

if (!existsSync(file)) {
  test('cross-rust: rust-made.json exists', () => {
    assert.fail(`${file} is missing; make it from the repository root with: ${MAKE}`);
  });
} else {
  let fixture;
  let parseError;
  try {
    fixture = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    parseError = err;
  }
  describe(`cross-rust: ${file}`, () => {
    test('cross-rust: file parses and was made by the Rust side', () => {
      assert.ifError(parseError);
      assert.equal(fixture.generator, 'rust');
    });
    if (fixture) {
      for (const c of fixtureCases(fixture)) test(`cross-rust ${c.name}`, c.run);
    }
  });
}
