// Runs in the browser (served by run-chromium.mjs): the RFC 9605 and RFC 9180 vectors, the
// cross-implementation fixtures (made here, and the Rust-made file when the server has one)
// and a media round trip inside a module worker (where RTCRtpScriptTransform code runs).
// Results are shown on the page and POSTed to /results.
import { fromHex, toHex } from '../../bytes.mjs';
import { deriveX25519KeyPair, HpkeAead, setupBaseR, setupBaseS } from '../../hpke.mjs';
import { aeadOpen, aeadSeal, importAeadKey } from '../../sframe-aead.mjs';
import { decodeHeader, encodeHeader } from '../../sframe-header.mjs';
import { deriveKeyMaterial, SframeKey } from '../../sframe.mjs';
import { fixtureCases } from '../../tools/check-fixtures.mjs';
import { parse, stringify } from '../../tools/json64.mjs';
import { makeFixtures } from '../../tools/make-fixtures.mjs';

const results = [];
let rustMade = null;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function run(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
  } catch (err) {
    results.push({ name, ok: false, error: `${err?.name}: ${err?.code ?? ''} ${err?.message}` });
  }
}

async function fetchJson(path, { optional = false } = {}) {
  const res = await fetch(path);
  if (res.ok) return parse(await res.text());
  if (optional) return null;
  throw new Error(`${path}: HTTP ${res.status}`);
}

async function main() {
  const sframeVectors = await fetchJson('/vectors/sframe-rfc9605.json');
  const hpkeVectors = await fetchJson('/vectors/hpke-rfc9180-a1-1-base.json');

  await run('rfc9605 header vectors', () => {
    for (const v of sframeVectors.header) {
      check(toHex(encodeHeader(BigInt(v.kid), BigInt(v.ctr))) === v.encoded, `encode ${v.encoded}`);
      const d = decodeHeader(fromHex(v.encoded));
      check(d.kid === BigInt(v.kid) && d.ctr === BigInt(v.ctr), `decode ${v.encoded}`);
    }
  });

  for (const v of sframeVectors.aes_ctr_hmac) {
    await run(`rfc9605 aes_ctr_hmac suite ${v.cipher_suite}`, async () => {
      const key = await importAeadKey(v.cipher_suite, fromHex(v.key));
      const ct = await aeadSeal(key, fromHex(v.nonce), fromHex(v.aad), fromHex(v.pt));
      check(toHex(ct) === v.ct, 'ct');
      check(toHex(await aeadOpen(key, fromHex(v.nonce), fromHex(v.aad), ct)) === v.pt, 'pt');
    });
  }

  for (const v of sframeVectors.sframe) {
    await run(`rfc9605 sframe suite ${v.cipher_suite}`, async () => {
      const material = await deriveKeyMaterial(v.cipher_suite, fromHex(v.base_key), BigInt(v.kid));
      check(toHex(material.key) === v.sframe_key && toHex(material.salt) === v.sframe_salt, 'key/salt');
      const key = await SframeKey.derive(v.cipher_suite, fromHex(v.base_key), BigInt(v.kid));
      check(toHex(key.nonce(BigInt(v.ctr))) === v.nonce, 'nonce');
      check(toHex(await key.encrypt(BigInt(v.ctr), fromHex(v.metadata), fromHex(v.pt))) === v.ct, 'ct');
      check(toHex((await key.decrypt(fromHex(v.ct), fromHex(v.metadata))).plaintext) === v.pt, 'pt');
    });
  }

  await run('rfc9180 A.1.1', async () => {
    const { setup } = hpkeVectors;
    const ephemeral = await deriveX25519KeyPair(fromHex(setup.ikmE));
    const recipient = await deriveX25519KeyPair(fromHex(setup.ikmR));
    check(toHex(recipient.publicKey) === setup.pkRm, 'pkRm');
    const info = fromHex(setup.info);
    const { enc, context } = await setupBaseS(recipient.publicKey, info, { aead: HpkeAead.AES_128_GCM, ephemeral });
    check(toHex(enc) === setup.enc, 'enc');
    const receiver = await setupBaseR(enc, recipient, info, { aead: HpkeAead.AES_128_GCM });
    let seq = 0;
    for (const e of hpkeVectors.encryptions) {
      for (; seq < e.sequence_number; seq++) await receiver.open(new Uint8Array(0), await context.seal(new Uint8Array(0), new Uint8Array(0)));
      const ct = await context.seal(fromHex(e.aad), fromHex(e.pt));
      check(toHex(ct) === e.ct, `ct ${e.sequence_number}`);
      check(toHex(await receiver.open(fromHex(e.aad), ct)) === e.pt, `pt ${e.sequence_number}`);
      seq++;
    }
    for (const x of hpkeVectors.exports) check(toHex(await context.export(fromHex(x.exporter_context), x.L)) === x.exported_value, 'export');
  });

  const jsMade = parse(stringify(await makeFixtures()));
  for (const c of fixtureCases(jsMade)) await run(`browser-made fixtures: ${c.name}`, c.run);

  rustMade = await fetchJson('/fixtures/rust-made.json', { optional: true });
  if (rustMade) {
    for (const c of fixtureCases(rustMade)) await run(`rust-made fixtures: ${c.name}`, c.run);
  }

  await run('module worker: sender and receiver key store round trip', async () => {
    const worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
    const reply = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      setTimeout(() => reject(new Error('worker timeout')), 20000);
    });
    worker.terminate();
    check(reply.ok, reply.error);
  });
}

try {
  await main();
} catch (err) {
  // Whatever broke the suite itself (a missing vector file, a syntax error in a module)
  // is reported as a failure rather than leaving the runner waiting.
  results.push({ name: 'browser suite', ok: false, error: `${err?.name}: ${err?.message}` });
}

const summary = {
  userAgent: navigator.userAgent,
  rustFixtures: Boolean(rustMade),
  passed: results.filter((r) => r.ok).length,
  failed: results.filter((r) => !r.ok).length,
  results,
};
document.getElementById('out').textContent = JSON.stringify(summary, null, 2);
await fetch('/results', { method: 'POST', body: JSON.stringify(summary) });
