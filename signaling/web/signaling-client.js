/**
 * The signaling WebSocket (docs/protocol.md): one JSON object per text message, tagged by
 * `type`. Unknown server message types and fields are ignored, as the protocol asks.
 *
 * @module signaling-client
 */

/** Protocol version spoken (docs/protocol.md §1). */
export const PROTOCOL_VERSION = 1;

/** The `/v1/rtc` URL on the page's own origin (ws: for http:, wss: for https:). */
export function defaultSignalingUrl(location = globalThis.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/rtc`;
}

/** Error sent by the server (`{type: "error", code, message}`), or a closed connection. */
export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SignalingError';
    /** Stable code of docs/protocol.md §6 (or `closed` / `connect_failed`). */
    this.code = code;
  }
}

/** A connection to the signaling service. */
export class SignalingClient extends EventTarget {
  /** @param {string} url */
  constructor(url = defaultSignalingUrl()) {
    super();
    this.url = url;
    this.ws = null;
    this.sent = 0;
    this.received = 0;
  }

  /**
   * Opens the WebSocket; rejects with `connect_failed`, or `timeout` when it is not open within
   * `timeoutMs` (a connect to a network that swallows packets can hang for minutes).
   */
  connect(timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      const timer = setTimeout(() => {
        reject(new SignalingError('timeout', `${this.url} not reached within ${timeoutMs} ms`));
        ws.close();
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new SignalingError('connect_failed', `cannot reach ${this.url}`));
      };
      ws.onmessage = (e) => this._onMessage(e.data);
      ws.onclose = (e) => {
        this.dispatchEvent(new CustomEvent('close', { detail: { code: e.code, reason: e.reason } }));
      };
    });
  }

  _onMessage(data) {
    if (typeof data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    this.received += 1;
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  /** Sends one message (dropped when the socket is not open). */
  send(msg) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    this.sent += 1;
    return true;
  }

  /** Resolves with the next message of one of `types`; rejects on `error` or close. */
  next(types, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.removeEventListener('message', onMessage);
        this.removeEventListener('close', onClose);
      };
      const onMessage = (e) => {
        const msg = e.detail;
        if (types.includes(msg.type)) {
          cleanup();
          resolve(msg);
        } else if (msg.type === 'error') {
          cleanup();
          reject(new SignalingError(msg.code, msg.message));
        }
      };
      const onClose = (e) => {
        cleanup();
        reject(new SignalingError('closed', `signaling closed (${e.detail.code})`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new SignalingError('timeout', `no ${types.join('/')} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.addEventListener('message', onMessage);
      this.addEventListener('close', onClose);
    });
  }

  /**
   * Sends `join` and resolves with `joined` (rejects with the server's error). When the room's
   * lobby is on, the server first says `waiting`: `onWaiting(msg)` is called and the join waits,
   * without a time limit, until a moderator admits it (`joined`) or denies it (`join_denied`).
   * `resume` (`{call, slot}` of a lost session) asks the service to resume it (`joined.resumed`).
   */
  async join({ room, token, name, bundle, onWaiting, resume }) {
    const reply = this.next(['joined', 'waiting']);
    this.send({ type: 'join', v: PROTOCOL_VERSION, room, token, name, device: bundle, ...(resume ? { resume } : {}) });
    const first = await reply;
    if (first.type === 'joined') return first;
    onWaiting?.(first);
    // The longest a timer can wait (about 24.8 days): a lobby wait ends with the moderator.
    return this.next(['joined'], 2 ** 31 - 1);
  }

  /** Calls `fn(msg)` for every message of `type`; returns a function that stops it. */
  on(type, fn) {
    const listener = (e) => fn(e.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** Closes the socket. */
  close() {
    this.ws?.close(1000);
  }
}
