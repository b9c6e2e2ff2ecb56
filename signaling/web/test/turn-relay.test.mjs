// Calls where UDP to the SFU is not used: two headless Chromium pages with
// `iceTransportPolicy: "relay"` (`relay=1`) get TURN credentials in `joined.ice_servers` from
// `signaling dev --turn-urls … --turn-secret-file …`, allocate relays on a real coturn on
// 127.0.0.1 with them, and play each other's encrypted camera through it: each page's selected
// candidate pair has a local relay candidate, and remote video decodes (not black).
// - `relay_only_call_through_coturn`: plain TURN (UDP).
// - `relay_only_call_through_coturn_over_tls`: TURN over TLS (`turns:`) as the pages' only ICE
//   server, the route for networks that let only TLS out (production: 443, architecture
//   §7.27); the relay is reached over `tls`. The certificate is self-signed for 127.0.0.1, so
//   that browser is started with `--ignore-certificate-errors` (Chromium checks TURN
//   certificates; a deployment uses one for its TURN host name, deploy/README.md "TURN").
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling),
// Debian's coturn (`turnserver`, installed by scripts/install-deps) and `openssl`; skipped,
// saying why, without them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { coturnSkip, startCoturn } from './coturn.mjs';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, picture, serviceSkip, startDev } from './sfu-harness.mjs';

/** The page's ICE configuration and the local candidate of its selected pair. */
function iceView(page) {
  return page.evaluate(async () => {
    const pc = window.__call.pc;
    const config = pc.getConfiguration();
    const report = await pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? report.get(pairId) : null;
    const local = pair ? report.get(pair.localCandidateId) : null;
    return {
      policy: config.iceTransportPolicy,
      servers: config.iceServers.map((s) => [s.urls].flat()).flat(),
      localType: local?.candidateType ?? null,
      localAddress: local?.address ?? null,
      relayProtocol: local?.relayProtocol ?? null,
    };
  });
}

/**
 * Two relay-only pages in one room decode each other's camera through the TURN server at
 * `url`, each over a local relay candidate reached with `protocol` (`udp`, `tls`).
 */
async function relayOnlyCall(chromium, dev, { url, protocol, screenshot }) {
  const room = `relay-${protocol}-${Date.now()}`;
  const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', params: { relay: '1' } });
  const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', params: { relay: '1' } });
  const both = await waitFor(async () => {
    const [va, vb] = [await a.view(), await b.view()];
    return { ok: decodedFrom(va, b.device) >= 30 && decodedFrom(vb, a.device) >= 30, va, vb };
  }, { timeoutMs: 40_000, intervalMs: 500 });
  const [ia, ib] = [await iceView(a.page), await iceView(b.page)];
  assert.ok(both.ok, `no relayed call: ${JSON.stringify({ a: both.va.inbound, b: both.vb.inbound, ia, ib })}`);
  for (const ice of [ia, ib]) {
    assert.equal(ice.policy, 'relay');
    assert.deepEqual(ice.servers, [url]);
    assert.equal(ice.localType, 'relay', JSON.stringify(ice));
    assert.equal(ice.localAddress, '127.0.0.1', JSON.stringify(ice));
    assert.equal(ice.relayProtocol, protocol, JSON.stringify(ice));
  }
  const pic = await picture(a.page, b.device);
  assert.ok(pic.width > 0 && pic.mean > 30 && pic.distinct >= 4, `alice sees ${JSON.stringify(pic)}`);
  await a.page.screenshot({ path: artifact(screenshot) });
  assert.deepEqual([...a.errors, ...b.errors], []);
  await a.context.close();
  await b.context.close();
}

/** A coturn (with `tls`, its TLS listener too), `signaling dev` handing out its one URL, and Chromium. */
function relaySetup({ tls }) {
  const env = {};
  before(async () => {
    env.coturn = await startCoturn({ tls });
    env.url = tls ? env.coturn.tlsUrl : env.coturn.url;
    env.dev = await startDev({ args: ['--turn-urls', env.url, '--turn-secret-file', env.coturn.secretFile] });
    env.chromium = await launchBrowser(tls ? { args: ['--ignore-certificate-errors'] } : {});
  });
  after(async () => {
    await env.chromium?.close();
    await env.dev?.stop();
    await env.coturn?.stop();
  });
  return env;
}

describe('browser call relayed through coturn', { skip: serviceSkip() || coturnSkip() }, () => {
  const env = relaySetup({ tls: false });
  test('relay_only_call_through_coturn', { timeout: 90_000 }, () =>
    relayOnlyCall(env.chromium, env.dev, { url: env.url, protocol: 'udp', screenshot: 'turn-relay-call.png' }));
});

describe('browser call relayed through coturn over TLS', { skip: serviceSkip() || coturnSkip() }, () => {
  const env = relaySetup({ tls: true });
  test('relay_only_call_through_coturn_over_tls', { timeout: 90_000 }, () =>
    relayOnlyCall(env.chromium, env.dev, { url: env.url, protocol: 'tls', screenshot: 'turn-tls-relay-call.png' }));
});
