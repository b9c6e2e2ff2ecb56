// A call where the browsers cannot use UDP at all. The test runs itself again inside a network
// namespace of its own (`unshare -n`: only a loopback interface) whose nftables output hook
// drops every UDP packet, so WebRTC's UDP sends fail there (EPERM), the SFU's UDP included;
// `signaling dev --ice-tcp-port …` (in the same namespace) advertises a `tcptype passive`
// candidate beside the UDP one. Two headless Chromium pages join one room: each page's selected
// candidate pair is TCP with bytes received on it, each decodes the other's end-to-end-encrypted
// camera (a picture, not black), and the SFU's metrics count the connections and the frames.
// (Chromium's `--force-webrtc-ip-handling-policy=disable_non_proxied_udp` was tried first: the
// headless Chromium 156 of the tests still gathered and checked UDP candidates with it.)
//
// Needs root (for the namespace and its nftables rule), `unshare`, `ip` and `nft` (Debian
// nftables, installed by scripts/install-deps), and `signaling` with the embedded SFU
// ($SIGNALING_BIN, else target/debug/signaling) built with ICE-TCP; skipped, saying why,
// without them.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { SIGNALING_BIN, decodedFrom, openDevice, picture, serviceSkip, startDev } from './sfu-harness.mjs';

/** Set in the run inside the namespace. */
const IN_NETNS = process.env.ICE_TCP_IN_NETNS === '1';

/** Shell commands that make the namespace's loopback usable and drop every UDP packet sent. */
const NAMESPACE_SETUP = [
  'ip link set lo up',
  'nft add table inet no_udp',
  "nft add chain inet no_udp out '{ type filter hook output priority 0; }'",
  'nft add rule inet no_udp out meta l4proto udp drop',
].join(' && ');

function iceTcpSkip() {
  const base = serviceSkip();
  if (base) return base;
  const help = execFileSync(SIGNALING_BIN, ['dev', '--help'], { encoding: 'utf8', timeout: 5000 });
  if (!/--ice-tcp-port/.test(help)) return `${SIGNALING_BIN} has no --ice-tcp-port`;
  if (IN_NETNS) return false;
  if (process.getuid?.() !== 0) return 'needs root for a network namespace without UDP';
  for (const tool of ['unshare', 'ip', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed (scripts/install-deps)`;
    }
  }
  return false;
}

/** Resolves with whether a UDP datagram to a socket of this namespace arrives within 500 ms. */
function udpArrives() {
  return new Promise((resolve) => {
    const receiver = createSocket('udp4');
    const sender = createSocket('udp4');
    const done = (arrived) => {
      clearTimeout(timer);
      receiver.close();
      sender.close();
      resolve(arrived);
    };
    const timer = setTimeout(() => done(false), 500);
    receiver.on('message', () => done(true));
    sender.on('error', () => {});
    receiver.bind(0, '127.0.0.1', () => {
      sender.send('probe', receiver.address().port, '127.0.0.1', () => {});
    });
  });
}

/** A TCP port free on 127.0.0.1 right now (bound, read, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The selected candidate pair of a page: its local and remote candidates' protocol and type. */
function selectedPair(page) {
  return page.evaluate(async () => {
    const report = await window.__call.pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? report.get(pairId) : null;
    const local = pair ? report.get(pair.localCandidateId) : null;
    const remote = pair ? report.get(pair.remoteCandidateId) : null;
    const pairs = [];
    report.forEach((s) => {
      if (s.type !== 'candidate-pair') return;
      const l = report.get(s.localCandidateId);
      const r = report.get(s.remoteCandidateId);
      pairs.push({ state: s.state, nominated: s.nominated, sent: s.bytesSent, received: s.bytesReceived, local: `${l?.protocol}/${l?.tcpType}/${l?.address}:${l?.port}`, remote: `${r?.protocol}/${r?.address}:${r?.port}`, selected: s.id === pairId });
    });
    return {
      pairs,
      state: pair?.state ?? null,
      localProtocol: local?.protocol ?? null,
      localTcpType: local?.tcpType ?? null,
      remoteProtocol: remote?.protocol ?? null,
      remoteAddress: remote?.address ?? null,
      remotePort: remote?.port ?? null,
      bytesReceived: pair?.bytesReceived ?? 0,
    };
  });
}

/** One sample of the embedded SFU's metrics (`/sfu/metrics` on the dev server). */
async function sfuMetric(http, line) {
  const text = await (await fetch(`${http}/sfu/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : null;
}

describe('browser call over ICE-TCP, run in a network namespace without UDP', { skip: IN_NETNS || iceTcpSkip() }, () => {
  test('call_connects_over_ice_tcp_when_udp_is_blocked', { timeout: 150_000 }, async () => {
    const self = fileURLToPath(import.meta.url);
    const script = `set -e; ${NAMESPACE_SETUP}; exec "${process.execPath}" --test --test-reporter=spec "${self}"`;
    // The inner run is a test run of its own, not a child of this one.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn('unshare', ['-n', '--', 'sh', '-c', script], { env: { ...env, ICE_TCP_IN_NETNS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `the run inside the namespace failed:\n${output}`);
    assert.match(output, /pass 1/, output);
  });
});

describe('inside the namespace (skipped outside it): browser call over ICE-TCP with UDP unusable', { skip: !IN_NETNS || iceTcpSkip() }, () => {
  let dev;
  let chromium;
  let tcpPort;
  before(async () => {
    tcpPort = await freePort();
    dev = await startDev({ args: ['--ice-tcp-port', String(tcpPort)] });
    chromium = await launchBrowser();
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
  });

  test('call_connects_over_ice_tcp_when_udp_is_blocked', { timeout: 90_000 }, async () => {
    assert.equal(await udpArrives(), false, 'UDP is blocked in this namespace');
    const room = `ice-tcp-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice' });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob' });
    const both = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: decodedFrom(va, b.device) >= 30 && decodedFrom(vb, a.device) >= 30, va, vb };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    const [pa, pb] = [await selectedPair(a.page), await selectedPair(b.page)];
    assert.ok(both.ok, `no call over ICE-TCP: ${JSON.stringify({ a: both.va.inbound, b: both.vb.inbound, pa, pb })}`);
    for (const pair of [pa, pb]) {
      assert.equal(pair.state, 'succeeded', JSON.stringify(pair));
      assert.equal(pair.localProtocol, 'tcp', JSON.stringify(pair));
      assert.equal(pair.remoteProtocol, 'tcp', JSON.stringify(pair));
      assert.equal(pair.remoteAddress, '127.0.0.1', JSON.stringify(pair));
      assert.equal(pair.remotePort, tcpPort, JSON.stringify(pair));
      assert.ok(pair.bytesReceived > 10_000, JSON.stringify(pair));
    }
    // The frames decoded above were decrypted by each page (SFrame, end to end): a picture, not
    // black or noise.
    for (const [page, from] of [[a.page, b.device], [b.page, a.device]]) {
      const pic = await picture(page, from);
      assert.ok(pic.width > 0 && pic.mean > 30 && pic.distinct >= 4, JSON.stringify(pic));
    }
    // One connection per page, every frame of the call on them.
    assert.equal(await sfuMetric(dev.http, 'sfu_ice_tcp_connections'), 2);
    assert.ok((await sfuMetric(dev.http, 'sfu_ice_tcp_frames_total{direction="received"}')) > 100);
    assert.ok((await sfuMetric(dev.http, 'sfu_ice_tcp_frames_total{direction="sent"}')) > 100);
    await a.page.screenshot({ path: artifact('ice-tcp-call.png') });
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.context.close();
    await b.context.close();
  });
});
