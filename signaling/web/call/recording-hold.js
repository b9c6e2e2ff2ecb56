/**
 * Strict recording (docs/protocol.md `recording_ready`): in a room with a verified recording
 * policy every sender of this device is held (its transform sends probes, no media) until a
 * `recording_ready` names its track and a recorder has acknowledged a key of this device.
 * `state.recordingHold` says whether anything is still held (the top bar's "Waiting for the
 * recorder…" note).
 *
 * @module call/recording-hold
 */

/** The held senders of this device and what releases them. */
export class RecordingHold {
  /**
   * @param {object} o
   * @param {import('./store.js').CallStore} o.store
   * @param {() => import('../media-crypto.js').MediaCrypto | null} o.media the session's transform worker
   */
  constructor({ store, media }) {
    this.store = store;
    this.media = media;
    /** This device's published track ids -> sender transform id. */
    this.ownTracks = new Map();
    /** Sender transform ids still held (no recorder receives them yet). */
    this.heldSenders = new Set();
    /** Held senders a `recording_ready` named, waiting for a recorder's key ack. */
    this.readySenders = new Set();
    /** A recorder acknowledged a key of this device (keys outlive media sessions). */
    this.recorderHasKey = false;
  }

  /** New keys for a new session: a recorder must acknowledge one of them again. */
  newKeys() {
    this.recorderHasKey = false;
  }

  /** A new media session's tracks are new: each waits for its own `recording_ready`. */
  newMedia() {
    this.ownTracks = new Map();
    this.heldSenders = new Set();
    this.readySenders = new Set();
    this.store.state.recordingHold = false;
  }

  /** This device's own track was published: its sender transform, by track id. */
  ownTrackPublished(track) {
    const id = { microphone: 'send-mic', camera: 'send-camera', screen: 'send-screen' }[track.source];
    if (id) this.ownTracks.set(track.id, id);
  }

  /**
   * Attaches the encrypting transform to a sender; in a recorded room it is held until a
   * `recording_ready` names its track.
   */
  attachSender(sender, options) {
    // Only a verified policy holds: an unverified one gives its recorder no key, so holding
    // would wait for nothing (the page warns about that policy instead).
    const held = !!this.store.state.recorded?.verified;
    if (held) {
      this.heldSenders.add(options.id);
      this.store.state.recordingHold = true;
    }
    this.media().attachSender(sender, { ...options, held });
  }

  /**
   * `recording_ready`: a recorder receives these tracks of this device, so their senders may
   * send (video from a keyframe) once a recorder holds this device's key (its `key_ack`).
   */
  onRecordingReady(m) {
    for (const track of m.tracks ?? []) {
      const id = this.ownTracks.get(track);
      if (id && this.heldSenders.has(id)) this.readySenders.add(id);
    }
    this.releaseReady();
  }

  /** A recorder acknowledged a key of this device: it can open its frames. */
  recorderAcked() {
    this.recorderHasKey = true;
    this.releaseReady();
  }

  /** Releases the held senders named ready, once a recorder holds this device's key; once none is held the note goes. */
  releaseReady() {
    if (!this.recorderHasKey) return;
    for (const id of this.readySenders) {
      this.heldSenders.delete(id);
      this.media()?.release(id);
    }
    this.readySenders.clear();
    const waiting = this.heldSenders.size > 0;
    if (this.store.state.recordingHold !== waiting) {
      this.store.state.recordingHold = waiting;
      this.store.changed();
    }
  }
}
