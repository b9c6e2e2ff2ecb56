/**
 * Shared parts of the browser tests: a static server for `signaling/web/` on 127.0.0.1:0 (the
 * page at `/`, modules under the same origin, as the signaling service serves them) and headless
 * Debian Chromium driven by playwright-core with the flags of docs/architecture.md §8, a fresh profile and
 * loopback-only host resolution. Playwright never downloads a browser here: it is given
 * `/usr/bin/chromium` (or $CHROMIUM).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The web client's directory. */
export const WEB_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Where screenshots go (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/web/', import.meta.url));
/** The Chromium binary. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PLAYWRIGHT = fileURLToPath(new URL('../node_modules/playwright-core/package.json', import.meta.url));
/** Why a browser test is skipped, or false. */
export const SKIP =
  (!existsSync(CHROMIUM) && `${CHROMIUM} not installed (scripts/install-deps installs Debian's chromium)`) ||
  (!existsSync(PLAYWRIGHT) && 'playwright-core not installed (cd signaling/web && npm ci)');

/** The flags of docs/architecture.md §8, plus loopback-only host resolution. */
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--disable-dev-shm-usage',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
  '--autoplay-policy=no-user-gesture-required',
];

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
};

/** Serves `root` on 127.0.0.1:0; resolves with `{url, close}`. */
export async function serveStatic(root = WEB_ROOT) {
  const base = root.endsWith(sep) ? root : root + sep;
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let path = normalize(join(base, decodeURIComponent(url.pathname)));
    if (!path.startsWith(base) && path + sep !== base) return void res.writeHead(403).end();
    if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'index.html');
    if (req.method !== 'GET' || !existsSync(path) || path.includes(`${sep}node_modules${sep}`)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(path));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    server,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/**
 * Launches Chromium with a fresh profile; resolves with `{context, close}`. Requests to anything
 * but 127.0.0.1 are aborted by a route as well as by host resolution.
 */
export async function launch() {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'web-client-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    permissions: ['camera', 'microphone'],
  });
  await context.route(/.*/, (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1') route.continue();
    else route.abort();
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens `path` on the server in a new page and collects its console errors. */
export async function openPage(context, url) {
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  return { page, errors };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; resolves with the last value. */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 250 } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    // `{ ok, ... }` results: only a truthy `ok` ends the wait (an `ok` built with `&&` can be
    // `undefined`, which must not read as "done").
    const done = last !== null && typeof last === 'object' && 'ok' in last ? Boolean(last.ok) : Boolean(last);
    if (done) return last;
    if (Date.now() > end) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Makes sure the artifacts directory exists and returns a path in it. */
export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/**
 * Launches Chromium for several independent devices: each `newContext()` has its own storage
 * (IndexedDB, so its own device identity). Playwright gives the browser a fresh temporary
 * profile. `args` are added to the flags (e.g. a fake capture file).
 */
export async function launchBrowser({ args = [] } = {}) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS, ...args] });
  return {
    browser,
    async newContext(options = {}) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['camera', 'microphone'], ...options });
      await context.route(/.*/, (route) => {
        const u = new URL(route.request().url());
        if (u.hostname === '127.0.0.1') route.continue();
        else route.abort();
      });
      return context;
    },
    close: () => browser.close(),
  };
}
