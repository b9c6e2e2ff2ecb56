/**
 * Call quality from `RTCPeerConnection.getStats()`: bitrates, loss, RTT, jitter, resolution and
 * the simulcast layer received, per inbound track and for what this device sends, plus the
 * worker's decrypt failures. {@link summarize} is a pure function of two reports (so it runs on
 * recorded reports in node); {@link QualityMonitor} samples a peer connection periodically.
 *
 * @module stats
 */

/** Simulcast layer a received picture height most likely comes from (camera 720p ladder). */
export function layerForHeight(height) {
  if (!height) return null;
  if (height >= 540) return 'high';
  if (height >= 270) return 'medium';
  return 'low';
}

/** `good` | `fair` | `poor` from loss ratio (0..1) and RTT (seconds). */
export function qualityLevel({ loss = 0, rtt = 0 }) {
  if (loss >= 0.08 || rtt >= 0.5) return 'poor';
  if (loss >= 0.02 || rtt >= 0.25) return 'fair';
  return 'good';
}

function toMap(report) {
  if (!report) return new Map();
  if (report instanceof Map) return report;
  const m = new Map();
  report.forEach((v, k) => m.set(k, v));
  return m;
}

function rate(cur, prev, field, dtS) {
  if (!prev || dtS <= 0) return 0;
  return Math.max(0, ((cur[field] ?? 0) - (prev[field] ?? 0)) / dtS);
}

/**
 * Summarizes `report` against the previous `prev` (both `RTCStatsReport` or Map of id -> stats).
 * @returns {{rtt: number|null, availableOutgoingBitrate: number|null,
 *   outbound: Array<{kind, rid, bitrate, width, height, fps, limitation}>,
 *   inbound: Array<{trackIdentifier, mid, kind, bitrate, loss, jitter, width, height, fps, layer, framesDecoded}>,
 *   sendBitrate: number, recvBitrate: number, loss: number}}
 */
export function summarize(prev, report) {
  const before = toMap(prev);
  const now = toMap(report);
  const out = { rtt: null, availableOutgoingBitrate: null, outbound: [], inbound: [], sendBitrate: 0, recvBitrate: 0, loss: 0 };
  let lostSum = 0;
  let expectedSum = 0;
  for (const s of now.values()) {
    const p = before.get(s.id);
    const dtS = p ? (s.timestamp - p.timestamp) / 1000 : 0;
    if (s.type === 'candidate-pair' && (s.nominated || s.state === 'succeeded') && s.currentRoundTripTime !== undefined) {
      out.rtt = s.currentRoundTripTime;
      out.availableOutgoingBitrate = s.availableOutgoingBitrate ?? null;
    } else if (s.type === 'outbound-rtp') {
      const bitrate = rate(s, p, 'bytesSent', dtS) * 8;
      out.sendBitrate += bitrate;
      out.outbound.push({
        kind: s.kind, rid: s.rid ?? null, bitrate, width: s.frameWidth ?? null, height: s.frameHeight ?? null,
        fps: s.framesPerSecond ?? null, limitation: s.qualityLimitationReason ?? null,
      });
    } else if (s.type === 'inbound-rtp') {
      const bitrate = rate(s, p, 'bytesReceived', dtS) * 8;
      const lost = Math.max(0, (s.packetsLost ?? 0) - (p?.packetsLost ?? 0));
      const received = Math.max(0, (s.packetsReceived ?? 0) - (p?.packetsReceived ?? 0));
      lostSum += lost;
      expectedSum += lost + received;
      out.recvBitrate += bitrate;
      out.inbound.push({
        trackIdentifier: s.trackIdentifier ?? null, mid: s.mid ?? null, kind: s.kind, bitrate,
        loss: lost + received > 0 ? lost / (lost + received) : 0, jitter: s.jitter ?? null,
        width: s.frameWidth ?? null, height: s.frameHeight ?? null, fps: s.framesPerSecond ?? null,
        layer: s.kind === 'video' ? layerForHeight(s.frameHeight) : null, framesDecoded: s.framesDecoded ?? null,
      });
    } else if (s.type === 'remote-inbound-rtp' && out.rtt === null && s.roundTripTime !== undefined) {
      out.rtt = s.roundTripTime;
    }
  }
  out.loss = expectedSum > 0 ? lostSum / expectedSum : 0;
  return out;
}

/** Samples a peer connection every `intervalMs` and reports summaries. */
export class QualityMonitor {
  /**
   * @param {RTCPeerConnection} pc
   * @param {(summary: ReturnType<typeof summarize>) => void} onSample
   */
  constructor(pc, onSample, intervalMs = 2000) {
    this.pc = pc;
    this.onSample = onSample;
    this.prev = null;
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Takes one sample now. */
  async sample() {
    if (this.pc.connectionState === 'closed') return null;
    const report = await this.pc.getStats();
    const summary = summarize(this.prev, report);
    this.prev = report;
    this.onSample(summary);
    return summary;
  }

  /** Stops sampling. */
  stop() {
    clearInterval(this.timer);
  }
}

/** Human-readable bitrate. */
export function formatBitrate(bps) {
  if (!Number.isFinite(bps) || bps <= 0) return '0 kbit/s';
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  return `${Math.round(bps / 1e3)} kbit/s`;
}
