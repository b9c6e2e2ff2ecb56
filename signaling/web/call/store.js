/**
 * The state the UI draws (`call.state`) and its `change` event. The call's parts write into
 * this one object; the store owns it, says when it changed, and keeps the warnings and notes
 * (each shown once).
 *
 * @module call/store
 */

/** `call.state` and the `change` notification. */
export class CallStore {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {string} [o.speaker] the audio output device id (null: the browser's default)
   * @param {() => void} o.changed dispatches the `change` event the UI listens to
   */
  constructor({ room, speaker, changed }) {
    this.changed = changed;
    /** What the UI draws. */
    this.state = {
      /** `idle`, `joining`, `waiting`, `in-call`, `reconnecting` (the socket was lost; tiles stay), `left`, `error`. */
      phase: 'idle',
      error: null,
      /**
       * The signaling connection: `{status: 'connected' | 'reconnecting' | 'failed', attempt,
       * retryAt, lastAttemptAt, offline, reconnects, resumes, mediaResets}`; `failed` once the retries
       * gave up (a `rejoin()` starts them again).
       */
      connection: { status: 'connected', attempt: 0, retryAt: null, lastAttemptAt: null, offline: false, reconnects: 0, resumes: 0, mediaResets: 0 },
      room,
      call: null,
      kind: null,
      self: null,
      participants: new Map(),
      activeSpeaker: null,
      pinned: null,
      securityCode: null,
      recorded: null,
      /**
       * Strict recording: true while this device's microphone/camera are held because no
       * recorder receives them yet (docs/protocol.md `recording_ready`); the view says why.
       */
      recordingHold: false,
      warnings: [],
      notices: [],
      serverErrors: [],
      local: { micOn: false, cameraOn: false, screenOn: false },
      /** The audio output device id remote audio plays through (null: the browser's default). */
      speaker: speaker ?? null,
      quality: null,
      /** One audio element each: every remote audio receiver (`[{id, track}]`). */
      remoteAudio: [],
      chat: null,
      /** `status`: what the badge says (e2ee-status.js), from the worker's reports. */
      e2ee: { generation: null, step: null, decrypted: 0, failures: 0, refusedEnvelopes: 0, sourceMismatches: 0, status: null },
      /** Moderator controls (moderation.js), set by the call. */
      moderation: null,
    };
  }

  /** A warning banner; the same one twice (a rejoin verifies everything again) shows once. */
  warn(kind, text, extra = {}) {
    if (this.state.warnings.some((w) => w.kind === kind && w.text === text)) return;
    this.state.warnings.push({ kind, text, at: Date.now(), ...extra });
    this.changed();
  }

  /** An informational note (not a problem): drawn calmly, never as an error banner; once. */
  note(kind, text) {
    if (this.state.notices.some((n) => n.kind === kind && n.text === text)) return;
    this.state.notices.push({ kind, text, at: Date.now() });
    this.changed();
  }

  /** Takes every note of `kind` away (no `change`: the caller sends one). */
  dropNotes(kind) {
    this.state.notices = this.state.notices.filter((n) => n.kind !== kind);
  }

  /** A server `error` for the quality panel's "Server messages" (the last 20). */
  recordServerError(m) {
    this.state.serverErrors = [...this.state.serverErrors, { code: m.code, message: m.message, at: Date.now() }].slice(-20);
  }
}
