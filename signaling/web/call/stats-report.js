/**
 * Call quality: the peer connection's `getStats()` summed into `state.quality` and each tile's
 * `quality` (stats.js `QualityMonitor`), and every 5 s a `stats` message to the service with
 * the decrypt failures and decrypted frames since the last one, RTT, loss and jitter.
 *
 * @module call/stats-report
 */
import { QualityMonitor, qualityLevel } from '../stats.js';

const STATS_INTERVAL_MS = 5000;

/** The quality monitor of one media session and the periodic `stats` message. */
export class StatsReport {
  /**
   * @param {object} o
   * @param {import('./store.js').CallStore} o.store
   * @param {() => import('../remote-media.js').RemoteMedia} o.remote the remote receivers
   * @param {(m: object) => void} o.send sends on the current signaling socket
   */
  constructor({ store, remote, send }) {
    this.store = store;
    this.remote = remote;
    this.send = send;
    this.monitor = null;
    this.timer = null;
    this.lastReported = { failures: 0, decrypted: 0 };
  }

  /** Starts watching `pc` (a media session's peer connection) and reporting. */
  start(pc) {
    this.monitor = new QualityMonitor(pc, (q) => this._onQuality(q));
    this.timer = setInterval(() => this._sendStats(), STATS_INTERVAL_MS);
  }

  /** Stops the monitor and the reports (a media reset starts them again with the new connection). */
  stop() {
    clearInterval(this.timer);
    this.monitor?.stop();
  }

  /** The session ended: the next one's worker counts from zero. */
  reset() {
    this.stop();
    this.monitor = null;
    this.lastReported = { failures: 0, decrypted: 0 };
  }

  _onQuality(q) {
    const s = this.store.state;
    s.quality = { ...q, level: qualityLevel({ loss: q.loss, rtt: q.rtt ?? 0 }), decryptFailures: s.e2ee.failures };
    const byTrack = new Map();
    for (const r of this.remote().receivers.values()) byTrack.set(r.track.id, r);
    for (const p of s.participants.values()) if (!p.self) p.quality = null;
    const me = s.participants.get(s.self.device);
    const high = q.outbound.filter((o) => o.kind === 'video' && o.width).sort((a, b) => b.width - a.width)[0];
    if (me) {
      me.quality = { level: s.quality.level, bitrate: q.sendBitrate, loss: q.loss, rtt: q.rtt, width: high?.width ?? null, height: high?.height ?? null, layer: high?.rid ?? null, decryptFailures: 0 };
    }
    for (const inb of q.inbound) {
      const r = byTrack.get(inb.trackIdentifier);
      const p = r?.device && s.participants.get(r.device);
      if (!p) continue;
      const prev = p.quality ?? { bitrate: 0, loss: 0, decryptFailures: 0 };
      p.quality = {
        bitrate: prev.bitrate + inb.bitrate,
        loss: Math.max(prev.loss, inb.loss),
        rtt: q.rtt,
        width: inb.width ?? prev.width,
        height: inb.height ?? prev.height,
        layer: inb.layer ?? prev.layer,
        decryptFailures: prev.decryptFailures + (r.failures ?? 0),
      };
      p.quality.level = qualityLevel({ loss: p.quality.loss, rtt: q.rtt ?? 0 });
    }
    this.store.changed();
  }

  _sendStats() {
    const e = this.store.state.e2ee;
    const q = this.store.state.quality;
    const msg = {
      type: 'stats',
      decrypt_failures: Math.max(0, e.failures - this.lastReported.failures),
      frames_decrypted: Math.max(0, e.decrypted - this.lastReported.decrypted),
    };
    if (q?.rtt !== null && q?.rtt !== undefined) msg.rtt_seconds = q.rtt;
    if (q) msg.loss_ratio = q.loss;
    const jitters = (q?.inbound ?? []).map((x) => x.jitter).filter((x) => typeof x === 'number');
    if (jitters.length) msg.jitter_seconds = Math.max(...jitters);
    this.lastReported = { failures: e.failures, decrypted: e.decrypted };
    this.send(msg);
  }
}
