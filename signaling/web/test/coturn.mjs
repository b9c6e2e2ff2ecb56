/**
 * A real coturn for the browser tests: Debian's `turnserver` on 127.0.0.1 with a shared secret
 * (`use-auth-secret`), no TLS, loopback peers allowed (coturn refuses them by default), no
 * daemon mode, no CLI. The secret is written to a file that `signaling --turn-secret-file`
 * reads, never put on a command line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** `turnserver` on `$PATH`, or null. */
export function turnserverPath() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'turnserver');
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/** Why the coturn tests are skipped, or false. */
export function coturnSkip() {
  return turnserverPath() ? false : 'turnserver (coturn) not installed: run scripts/install-deps or `apt-get install -y coturn`';
}

async function freeUdpPort() {
  const s = createSocket('udp4');
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Resolves once coturn answers a STUN Binding request on `port` (polled, bounded). */
async function waitForStun(port, timeoutMs = 10_000) {
  const s = createSocket('udp4');
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  try {
    const answered = new Promise((resolve) => s.once('message', resolve));
    // RFC 8489 §5: Binding request, no attributes, magic cookie, random transaction id.
    const request = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      s.send(request, port, '127.0.0.1');
      const got = await Promise.race([answered, new Promise((r) => setTimeout(() => r(null), 100))]);
      if (got) return;
    }
    throw new Error(`coturn did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`);
  } finally {
    s.close();
  }
}

/**
 * Starts coturn on a free port of 127.0.0.1. Resolves with `{url, port, secretFile, stop}`;
 * `url` is the `turn:` URL to give signaling.
 */
export async function startCoturn() {
  const dir = mkdtempSync(join(tmpdir(), 'coturn-web-test-'));
  const secret = randomBytes(24).toString('base64url');
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const port = await freeUdpPort();
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(
    conf,
    [
      'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', `listening-port=${port}`, 'allow-loopback-peers',
      'no-tls', 'no-dtls', 'no-cli', 'use-auth-secret', `static-auth-secret=${secret}`, 'realm=e2ee-sfu.test',
      `pidfile=${join(dir, 'turnserver.pid')}`, `userdb=${join(dir, 'turndb')}`, 'log-file=stdout', 'simple-log', '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const child = spawn(turnserverPath(), ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForStun(port);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `turn:127.0.0.1:${port}?transport=udp`, port, secretFile, stop };
}
