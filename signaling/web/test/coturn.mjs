/**
 * A real coturn for the browser tests: Debian's `turnserver` on 127.0.0.1 with a shared secret
 * (`use-auth-secret`), loopback peers allowed (coturn refuses them by default), no daemon mode,
 * no CLI; plain TURN only, or with `{ tls: true }` TURN over TLS (`turns:`) too, with a
 * certificate for 127.0.0.1 made here by `openssl`. The secret is written to a file that
 * `signaling --turn-secret-file` reads, never put on a command line.
 */
import { execFileSync, spawn } from 'node:child_process';
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

/** A free TCP port of 127.0.0.1. */
async function freeTcpPort() {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts TCP connections on `port` (polled, bounded). */
async function waitForTcp(port, timeoutMs = 10_000) {
  const { connect } = await import('node:net');
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing accepts TCP on 127.0.0.1:${port} within ${timeoutMs} ms`);
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
 * `url` is the `turn:` URL to give signaling. With `{ tls: true }` it also listens for TURN
 * over TLS on a free TCP port and resolves with `tlsUrl` (`turns:127.0.0.1:PORT?transport=tcp`)
 * too; its certificate (self-signed, for IP 127.0.0.1) is made here with `openssl`.
 */
export async function startCoturn({ tls = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'coturn-web-test-'));
  const secret = randomBytes(24).toString('base64url');
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const port = await freeUdpPort();
  const tlsPort = tls ? await freeTcpPort() : null;
  const tlsLines = [];
  if (tls) {
    const [cert, key] = [join(dir, 'turn.crt'), join(dir, 'turn.key')];
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    tlsLines.push(`tls-listening-port=${tlsPort}`, `cert=${cert}`, `pkey=${key}`, 'no-dtls');
  } else {
    tlsLines.push('no-tls', 'no-dtls');
  }
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(
    conf,
    [
      'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', `listening-port=${port}`, 'allow-loopback-peers',
      ...tlsLines, 'no-cli', 'use-auth-secret', `static-auth-secret=${secret}`, 'realm=e2ee-sfu.test',
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
    if (tls) await waitForTcp(tlsPort);
  } catch (err) {
    await stop();
    throw err;
  }
  const tlsUrl = tls ? `turns:127.0.0.1:${tlsPort}?transport=tcp` : undefined;
  return { url: `turn:127.0.0.1:${port}?transport=udp`, tlsUrl, port, secretFile, stop };
}
