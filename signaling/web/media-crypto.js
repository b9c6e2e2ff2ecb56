/**
 * Page side of the media encryption: owns one transform worker (e2ee-worker.js) and attaches
 * it to RTP senders and receivers with `RTCRtpScriptTransform`, or with `createEncodedStreams()`
 * where only that exists (the peer connection then needs {@link MediaCrypto.peerConnectionConfig}).
 *
 * @module media-crypto
 */

/** True when this browser can transform encoded frames at all. */
export function encodedTransformSupported() {
  return typeof RTCRtpScriptTransform === 'function' || typeof RTCRtpSender?.prototype?.createEncodedStreams === 'function';
}

/** One transform worker and the frames it encrypts and decrypts. */
export class MediaCrypto {
  /**
   * @param {object} [o]
   * @param {URL|string} [o.workerUrl] the worker module (default: e2ee-worker.js beside this file)
   * @param {'script'|'streams'} [o.mode] force a mechanism (tests); default: script transform when present
   */
  constructor({ workerUrl = new URL('./e2ee-worker.js', import.meta.url), mode } = {}) {
    this.mode = mode ?? (typeof RTCRtpScriptTransform === 'function' ? 'script' : 'streams');
    this.worker = new Worker(workerUrl, { type: 'module', name: 'e2ee' });
    this.latest = { transforms: [], totals: { encrypted: 0, decrypted: 0, failures: 0, dropped: 0, keyChanges: 0 } };
    /** Called with `{slot, generation}` when frames arrive under a key this device lacks. */
    this.onUnknownKid = () => {};
    /** Called with `{id, slot}` when receiver transform `id`'s frames open with another KID slot's key. */
    this.onOpenedBy = () => {};
    /** Called with each stats report of the worker. */
    this.onStats = () => {};
    this._waiters = [];
    this._hashWaiters = [];
    /** Set by {@link MediaCrypto.close}: the worker is stopped and answers nothing more. */
    this.closed = false;
    this.worker.addEventListener('message', (e) => this._onMessage(e.data));
  }

  /** Extra `RTCPeerConnection` configuration the chosen mechanism needs. */
  peerConnectionConfig() {
    return this.mode === 'streams' ? { encodedInsertableStreams: true } : {};
  }

  _onMessage(msg) {
    if (msg?.type === 'stats') {
      this.latest = msg;
      this.onStats(msg);
      for (const w of this._waiters.splice(0)) w(msg);
    } else if (msg?.type === 'plaintext-hashes') {
      for (const w of this._hashWaiters.splice(0)) w(msg.hashes);
    } else if (msg?.type === 'opened-by') {
      this.onOpenedBy(msg);
    } else if (msg?.type === 'unknown-kid') {
      this.onUnknownKid(msg);
    }
  }

  _attach(endpoint, options) {
    if (this.mode === 'script') {
      endpoint.transform = new RTCRtpScriptTransform(this.worker, options);
    } else {
      const { readable, writable } = endpoint.createEncodedStreams();
      this.worker.postMessage({ type: 'stream', readable, writable, options }, [readable, writable]);
    }
  }

  /**
   * Encrypts everything `sender` sends. `stream` is the KID stream (0 audio, 1 camera, 2 screen).
   * `held` (strict recording): no media until {@link MediaCrypto.release} (the worker sends one
   * probe of one byte per RTP stream so that the SFU publishes the track).
   */
  attachSender(sender, { id, kind, stream, held = false }) {
    this._attach(sender, { side: 'send', id, kind, stream, held });
  }

  /** Lets held sender `id` send: a recorder receives its track (video starts at a keyframe). */
  release(id) {
    this.worker.postMessage({ type: 'release', id });
  }

  /** Decrypts everything `receiver` receives; frames failing authentication are dropped. */
  attachReceiver(receiver, { id, kind }) {
    this._attach(receiver, { side: 'recv', id, kind });
  }

  /** Sets the key this device sends under (from the key manager). */
  setSenderKey({ slot, generation, step, suite, baseKey }) {
    this.worker.postMessage({ type: 'sender-key', slot, generation, step, suite, baseKey });
  }

  /** Adds another sender's key (from an opened envelope). */
  addReceiverKey({ slot, generation, step, suite, baseKey }) {
    this.worker.postMessage({ type: 'receiver-key', slot, generation, step, suite, baseKey });
  }

  /** Forgets a sender's keys (it left). */
  removeSender(slot) {
    this.worker.postMessage({ type: 'remove-sender', slot });
  }

  /**
   * Resolves with a fresh stats report of the worker; with the last one it sent when the
   * worker is stopped (before or while asked) or does not answer within `timeoutMs`, so that a
   * caller never waits on a worker a reconnect has just stopped.
   */
  stats({ timeoutMs = 2000 } = {}) {
    if (this.closed) return Promise.resolve(this.latest);
    return new Promise((resolve) => {
      const waiter = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      const timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        resolve(this.latest);
      }, timeoutMs);
      this._waiters.push(waiter);
      this.worker.postMessage({ type: 'stats' });
    });
  }

  /**
   * Test hook (loopback test mode only): keep short hashes (8 bytes of SHA-256, hex) of up to
   * `limit` decrypted frames, so a test can show that nobody on the SFU's path saw them.
   */
  recordPlaintextHashes(limit) {
    this.worker.postMessage({ type: 'record-plaintext', limit });
  }

  /** Resolves with the recorded plaintext hashes (see {@link recordPlaintextHashes}). */
  plaintextHashes() {
    if (this.closed) return Promise.resolve([]);
    return new Promise((resolve) => {
      this._hashWaiters.push(resolve);
      this.worker.postMessage({ type: 'plaintext-hashes' });
    });
  }

  /** Stops the worker; whoever waits for its stats or hashes gets the last it sent / none. */
  close() {
    this.closed = true;
    this.worker.terminate();
    for (const w of this._waiters.splice(0)) w(this.latest);
    for (const w of this._hashWaiters.splice(0)) w([]);
  }
}
