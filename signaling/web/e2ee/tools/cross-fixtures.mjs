#!/usr/bin/env node
/**
 * Writes the JavaScript side's cross-implementation fixture file (docs/e2ee.md §5) with fresh
 * random keys:  node signaling/web/e2ee/tools/cross-fixtures.mjs OUT.json
 * The Rust crate's tests open it; this module's own tests open the Rust-made one.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeFixtures } from './make-fixtures.mjs';
import { stringify } from './json64.mjs';

const out = process.argv[2];
if (!out || process.argv.length !== 3) {
  console.error('usage: node signaling/web/e2ee/tools/cross-fixtures.mjs OUT.json');
  process.exit(2);
}
const fixture = await makeFixtures();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${stringify(fixture)}\n`);
const counts = Object.entries(fixture)
  .filter(([, v]) => Array.isArray(v))
  .map(([k, v]) => `${k} ${v.length}`)
  .join(', ');
console.log(`wrote ${out}: ${counts}`);
