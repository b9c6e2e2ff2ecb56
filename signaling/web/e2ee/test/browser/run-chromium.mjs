#!/usr/bin/env node
/**
 * Runs the browser suite (suite.mjs) in headless Chromium against a server on 127.0.0.1 and
 * prints the results:  node signaling/web/e2ee/test/browser/run-chromium.mjs [/usr/bin/chromium]
 * Exit status 0 when every check passed. Used by test/chromium.test.mjs.
 *
 * The server serves this module's directory under /e2ee/, the RFC vectors under /vectors/ and,
 * when present, the Rust-made fixture file under /fixtures/ (E2EE_FIXTURES_DIR or
 * target/e2ee-fixtures). Chromium gets a fresh profile, loopback-only host resolution and the
 * flags of docs/architecture.md §8; the page posts its results to /results.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODULE_DIR = fileURLToPath(new URL('../../', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const TYPES = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.html': 'text/html', '.json': 'application/json' };

function resolveUnder(root, relative) {
  const path = normalize(join(root, decodeURIComponent(relative)));
  return path.startsWith(root.endsWith(sep) ? root : root + sep) ? path : null;
}

function fileFor(urlPath) {
  const fixturesDir = process.env.E2EE_FIXTURES_DIR || join(REPO_ROOT, 'target', 'e2ee-fixtures');
  if (urlPath.startsWith('/e2ee/')) return resolveUnder(MODULE_DIR, urlPath.slice('/e2ee/'.length));
  if (urlPath.startsWith('/vectors/')) return resolveUnder(join(REPO_ROOT, 'e2ee-frames', 'tests', 'data'), urlPath.slice('/vectors/'.length));
  if (urlPath === '/fixtures/rust-made.json') return join(fixturesDir, 'rust-made.json');
  return null;
}

/**
 * Serves the suite, runs Chromium on it and resolves with the page's summary
 * (`{userAgent, passed, failed, results: [{name, ok, error?}]}`).
 */
export async function runInChromium({ chromium = '/usr/bin/chromium', timeoutMs = 60_000 } = {}) {
  let deliver;
  const summary = new Promise((resolve) => {
    deliver = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/results') {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        res.end('ok');
        deliver(JSON.parse(body));
      });
      return;
    }
    const file = fileFor(url.pathname);
    if (req.method !== 'GET' || !file || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const profile = mkdtempSync(join(tmpdir(), 'e2ee-chromium-'));
  const child = spawn(
    chromium,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--no-default-browser-check',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      `--user-data-dir=${profile}`,
      `http://127.0.0.1:${port}/e2ee/test/browser/index.html`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  let timer;
  try {
    return await Promise.race([
      summary,
      exited.then((code) => Promise.reject(new Error(`chromium exited early (${code}): ${stderr}`))),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no results from chromium within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    // Chromium and its helper processes share the process group we created for them.
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const summary = await runInChromium({ chromium: process.argv[2] ?? '/usr/bin/chromium' });
  for (const r of summary.results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name}${r.ok ? '' : `: ${r.error}`}`);
  console.log(`${summary.userAgent}\npassed ${summary.passed}, failed ${summary.failed}, rust fixtures ${summary.rustFixtures ? 'checked' : 'absent'}`);
  process.exit(summary.failed === 0 ? 0 : 1);
}
