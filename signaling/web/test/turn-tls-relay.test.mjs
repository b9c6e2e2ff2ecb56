// A call for networks that let only TLS out (the production route on 443, architecture §7.27):
// two headless Chromium pages with `iceTransportPolicy: "relay"` (`relay=1`) whose only ICE
// server is TURN over TLS (`turns:`) on a real coturn on 127.0.0.1, allocate their relays over
// TLS with the credentials signaling minted, and play each other's encrypted camera through
// them: each page's selected pair has a local relay candidate reached over `tls`, and remote
// video decodes (not black). The certificate is self-signed for 127.0.0.1, so this browser is
// started with `--ignore-certificate-errors` (a deployment uses a certificate for its TURN host
// name, deploy/README.md "TURN").
//
// Needs `signaling` with the embedded SFU ($SIGNALING_BIN, else target/debug/signaling),
// Debian's coturn (`turnserver`) and `openssl`; skipped, saying why, without them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { coturnSkip, startCoturn } from './coturn.mjs';
import { artifact, launchBrowser, waitFor } from './harness.mjs';
import { decodedFrom, openDevice, picture, serviceSkip, startDev } from './sfu-harness.mjs';

/** The page's ICE servers and the local candidate of its selected pair. */
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
      relayProtocol: local?.relayProtocol ?? null,
    };
  });
}

describe('browser call relayed through coturn over TLS', { skip: serviceSkip() || coturnSkip() }, () => {
  let coturn;
  let dev;
  let chromium;
  before(async () => {
    coturn = await startCoturn({ tls: true });
    dev = await startDev({ args: ['--turn-urls', coturn.tlsUrl, '--turn-secret-file', coturn.secretFile] });
    chromium = await launchBrowser({ args: ['--ignore-certificate-errors'] });
  });
  after(async () => {
    await chromium?.close();
    await dev?.stop();
    await coturn?.stop();
  });

  test('relay_only_call_through_coturn_over_tls', { timeout: 90_000 }, async () => {
    const room = `relay-tls-${Date.now()}`;
    const a = await openDevice(chromium, dev.http, room, 'alice', { name: 'Alice', params: { relay: '1' } });
    const b = await openDevice(chromium, dev.http, room, 'bob', { name: 'Bob', params: { relay: '1' } });
    const both = await waitFor(async () => {
      const [va, vb] = [await a.view(), await b.view()];
      return { ok: decodedFrom(va, b.device) >= 30 && decodedFrom(vb, a.device) >= 30, va, vb };
    }, { timeoutMs: 40_000, intervalMs: 500 });
    const [ia, ib] = [await iceView(a.page), await iceView(b.page)];
    assert.ok(both.ok, `no call relayed over TLS: ${JSON.stringify({ a: both.va.inbound, b: both.vb.inbound, ia, ib })}`);
    for (const ice of [ia, ib]) {
      assert.equal(ice.policy, 'relay');
      assert.deepEqual(ice.servers, [coturn.tlsUrl]);
      assert.equal(ice.localType, 'relay', JSON.stringify(ice));
      assert.equal(ice.relayProtocol, 'tls', JSON.stringify(ice));
    }
    const pic = await picture(a.page, b.device);
    assert.ok(pic.width > 0 && pic.mean > 30 && pic.distinct >= 4, `alice sees ${JSON.stringify(pic)}`);
    await a.page.screenshot({ path: artifact('turn-tls-relay-call.png') });
    assert.deepEqual([...a.errors, ...b.errors], []);
    await a.context.close();
    await b.context.close();
  });
});
