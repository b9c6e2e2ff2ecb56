/**
 * Shared parts of the browser tests that run calls through the real service: spawning
 * `signaling dev` (signaling + embedded SFU) or the split deployment (`sfu` + `signaling serve`)
 * on port 0 of 127.0.0.1, issuing tokens with the same binary, opening the page the service
 * serves, and reading a page's call state, decoded frames and picture.
 *
 * Binaries: `$SIGNALING_BIN` / `$SFU_BIN`, else `target/debug/{signaling,sfu}` at the repository
 * root (the test command builds them before the Node tests).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SKIP } from './harness.mjs';

/** The repository root. */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** The signaling binary. */
export const SIGNALING_BIN = process.env.SIGNALING_BIN || `${REPO}target/debug/signaling`;
/** The SFU binary. */
export const SFU_BIN = process.env.SFU_BIN || `${REPO}target/debug/sfu`;

/** Why the real-service tests are skipped, or false. */
export function serviceSkip({ sfu = false } = {}) {
  if (SKIP) return SKIP;
  if (!existsSync(SIGNALING_BIN)) return `${SIGNALING_BIN} not built (cargo build -p signaling)`;
  if (sfu && !existsSync(SFU_BIN)) return `${SFU_BIN} not built (cargo build -p sfu)`;
  let help = '';
  try {
    help = execFileSync(SIGNALING_BIN, ['dev', '--help'], { stdio: 'pipe', timeout: 5000, encoding: 'utf8' });
  } catch {
    help = '';
  }
  if (!/--udp-port/.test(help)) return `${SIGNALING_BIN} has no embedded SFU yet (signaling dev --udp-port missing)`;
  return false;
}

/** A development token from the binary (dev API key). */
export function token(room, identity, role = 'caller') {
  return execFileSync(SIGNALING_BIN, ['token', '--room', room, '--identity', identity, '--role', role], { encoding: 'utf8' }).trim();
}

/** Waits for `re` in a child's output (stdout and stderr); resolves with the match. */
function waitForOutput(child, re, what, timeoutMs = 15_000) {
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${log.slice(-2000)}`)), timeoutMs);
    const onData = (d) => {
      // eslint-disable-next-line no-control-regex
      log = (log + d).replace(/\x1b\[[0-9;]*m/g, '').slice(-20_000);
      const m = re.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${log.slice(-2000)}`));
    });
  });
}

function stopper(child) {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/**
 * `signaling dev --listen 127.0.0.1:0` (or `listen`, e.g. the address of a service being
 * restarted): signaling and an SFU in one process, with `args` added (e.g. `--turn-urls`).
 * Resolves with `{http, stop}`; `http` is parsed from the join links the command prints; `stop`
 * sends SIGTERM (the service drains: every WebSocket closes with 1001) and waits for the exit.
 */
export async function startDev({ args = [], listen = '127.0.0.1:0' } = {}) {
  // SERVICE_LOG=<RUST_LOG filter> with SERVICE_LOG_FILE=<path> keeps the service's log for
  // debugging a failing browser test.
  const child = spawn(SIGNALING_BIN, ['dev', '--listen', listen, '--room', 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.SERVICE_LOG || 'warn' } });
  const m = await waitForOutput(child, /(http:\/\/127\.0\.0\.1:\d+)\/#room=demo&name=\w+&test=1&join=1&token=/, 'signaling dev');
  child.stdout.resume();
  if (process.env.SERVICE_LOG_FILE) child.stderr.pipe(createWriteStream(process.env.SERVICE_LOG_FILE));
  else child.stderr.resume();
  return { child, http: m[1], stop: stopper(child) };
}

/** `sfu` with `controlSecret` on 127.0.0.1 (`httpPort` 0: a free one); resolves with `{child, httpPort}`. */
async function startSfu(controlSecret, httpPort = 0) {
  // Port 0: the SFU logs the address it bound.
  const child = spawn(SFU_BIN, ['--control-secret', controlSecret, '--http-port', String(httpPort), '--udp-port', '0', '--bind-address', '127.0.0.1', '--advertised-address', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  const port = (await waitForOutput(child, /sfu serving.*http=127\.0\.0\.1:(\d+)/, 'sfu'))[1];
  child.stdout.resume();
  return { child, httpPort: Number(port) };
}

/**
 * The production split: `sfu` with a control secret on free ports, then `signaling serve` on
 * it. Resolves with `{http, sfuControl, controlSecret, adminToken, restartSfu, stop}`;
 * `restartSfu()` kills the SFU with SIGKILL and starts a new one on the same control port (its
 * media port is a new one: the answers after `media_reset` name it).
 */
export async function startSplit() {
  const controlSecret = `ctl-${Math.random().toString(36).slice(2)}${Date.now()}`;
  const adminToken = `adm-${Math.random().toString(36).slice(2)}`;
  const first = await startSfu(controlSecret);
  let sfu = first.child;
  const sfuControl = `http://127.0.0.1:${first.httpPort}`;
  const sig = spawn(
    SIGNALING_BIN,
    ['serve', '--sfu-url', sfuControl, '--sfu-control-secret', controlSecret, '--api-key', 'devkey:devsecret', '--admin-token', adminToken, '--auto-create-rooms', 'true', '--bind-address', '127.0.0.1', '--http-port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } },
  );
  const gm = await waitForOutput(sig, /signaling listening addr=(127\.0\.0\.1:\d+)/, 'signaling serve');
  sig.stdout.resume();
  const stopSig = stopper(sig);
  return {
    http: `http://${gm[1]}`,
    sfuControl,
    controlSecret,
    adminToken,
    restartSfu: async () => {
      await new Promise((resolve) => {
        if (sfu.exitCode !== null || sfu.signalCode !== null) return resolve();
        sfu.once('exit', resolve);
        sfu.kill('SIGKILL');
      });
      sfu = (await startSfu(controlSecret, first.httpPort)).child;
    },
    stop: async () => {
      await stopSig();
      await stopper(sfu)();
    },
  };
}

/** The window the call tests use (CSS pixels). */
export const WINDOW = { width: 1280, height: 800 };

/**
 * Opens the page the service serves as one device (its own browser context: its own
 * IndexedDB identity) and joins `room`. Options: `role`, `watch` (viewer), `params` (more URL
 * parameters, e.g. `{relay: '1'}`), `init` (a script run in the page before its own, e.g. one
 * that takes the camera away).
 */
export async function openDevice(chromium, http, room, identity, { role = 'caller', watch = false, name = identity, viewport = WINDOW, params = {}, init = null } = {}) {
  const context = await chromium.newContext({ viewport });
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const q = new URLSearchParams({ room, name, join: '1', test: '1', ...(watch ? { watch: '1' } : {}), ...params });
  await page.goto(`${http}/?${q}#token=${token(room, identity, role)}`);
  await page.waitForFunction(() => window.__call?.state.phase === 'in-call' || window.__call?.state.phase === 'error', null, { timeout: 30_000 });
  const failed = await page.evaluate(() => window.__call.state.error);
  if (failed) throw new Error(`${identity} could not join: ${JSON.stringify(failed)}`);
  const device = await page.evaluate(() => window.__call.state.self.device);
  return { context, page, errors, device, identity, view: () => view(page) };
}

/** What a page's call looks like now: keys, code, decoded frames per remote track, worker counts. */
export function view(page) {
  return page.evaluate(async () => {
    const c = window.__call;
    const inbound = [];
    if (c.pc) {
      const report = await c.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          inbound.push({ kind: s.kind, track: s.trackIdentifier, packets: s.packetsReceived ?? 0, framesDecoded: s.framesDecoded ?? 0, energy: s.totalAudioEnergy ?? 0, width: s.frameWidth ?? null });
        }
      });
    }
    const remote = [...c.remote.receivers.values()].map((r) => ({ id: r.id, kind: r.kind, device: r.device, source: r.source, trackId: r.track.id, failures: r.failures, mid: r.mid }));
    // No worker while a page reconnects (its session's parts are dropped until the rejoin).
    const w = c.media ? await c.media.stats() : { totals: { encrypted: 0, decrypted: 0, failures: 0, dropped: 0, keyChanges: 0 }, transforms: [] };
    return {
      device: c.state.self.device,
      slot: c.state.self.slot,
      phase: c.state.phase,
      code: c.state.securityCode,
      participants: [...c.state.participants.keys()].sort(),
      sending: c.keys?.current && { generation: c.keys.current.generation, step: c.keys.current.step },
      received: Object.fromEntries(c.keys?.received ?? []),
      remote,
      inbound,
      videoDecoded: inbound.filter((s) => s.kind === 'video').reduce((a, s) => a + s.framesDecoded, 0),
      audioPackets: inbound.filter((s) => s.kind === 'audio').reduce((a, s) => a + s.packets, 0),
      audioEnergy: inbound.filter((s) => s.kind === 'audio').reduce((a, s) => a + s.energy, 0),
      worker: w.totals,
      recvTransforms: w.transforms.filter((t) => t.side === 'recv').map((t) => ({ id: t.id, kind: t.kind, frames: t.frames, failures: t.failures, lastSlot: t.lastSlot, lastError: t.lastError })),
      warnings: c.state.warnings.map((x) => `${x.kind}: ${x.text}`),
      sourceMismatches: c.state.e2ee.sourceMismatches,
    };
  });
}

/** Frames decoded from `device`'s camera (or `source`) on this page, by the receiver's stats. */
export function decodedFrom(v, device, source = 'camera') {
  const ids = new Set(v.remote.filter((r) => r.device === device && r.kind === 'video' && r.source === source).map((r) => r.trackId));
  return v.inbound.filter((s) => s.kind === 'video' && ids.has(s.track)).reduce((a, s) => a + s.framesDecoded, 0);
}

/**
 * Samples the picture of `device`'s tile video (or a stage video for `source: 'screen'`) into
 * a canvas: `{width, height, mean, distinct}` (mean luma 0–255, distinct coarse colours).
 */
export function picture(page, device, source = 'camera') {
  return page.evaluate(
    ({ device, source }) => {
      const c = window.__call;
      const p = c.state.participants.get(device);
      const track = source === 'screen' ? p?.screenTrack : p?.videoTrack;
      const video = [...document.querySelectorAll('video')].find((v) => v.srcObject?.getVideoTracks?.()[0] === track);
      if (!video || !video.videoWidth) return { width: 0, height: 0, mean: 0, distinct: 0, found: !!video };
      const canvas = document.createElement('canvas');
      canvas.width = 160;
      canvas.height = 90;
      const g = canvas.getContext('2d', { willReadFrequently: true });
      g.drawImage(video, 0, 0, canvas.width, canvas.height);
      const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      const colours = new Set();
      for (let i = 0; i < d.length; i += 4) {
        sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        colours.add(`${d[i] >> 5},${d[i + 1] >> 5},${d[i + 2] >> 5}`);
      }
      return { width: video.videoWidth, height: video.videoHeight, mean: sum / (d.length / 4), distinct: colours.size };
    },
    { device, source },
  );
}

/** Sleeps `ms`. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
