/**
 * The call quality panel (from getStats and the E2EE worker): send/receive bitrate, loss, RTT,
 * per-participant resolution and simulcast layer, decrypt failures, and the current key.
 *
 * @module ui/quality
 */
import { formatBitrate } from '../stats.js';
import { h, icon, replace } from './dom.js';
import { qualityBars } from './grid.js';

function pct(x) {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '–';
}

function ms(seconds) {
  return Number.isFinite(seconds) ? `${Math.round(seconds * 1000)} ms` : '–';
}

/** Draws the quality panel. */
export class QualityPanel {
  constructor(root) {
    this.root = root;
  }

  /** Renders from `state`. */
  render(state) {
    const q = state.quality;
    const e = state.e2ee;
    const out = (q?.outbound ?? []).filter((o) => o.kind === 'video');
    const stat = (label, value, cls = '') => h('div', { class: `stat ${cls}` }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
    replace(
      this.root,
      h('h2', {}, icon('chart'), 'Call quality', q ? qualityBars(q) : null),
      h(
        'div',
        { class: 'stats-grid' },
        stat('Sending', formatBitrate(q?.sendBitrate ?? 0)),
        stat('Receiving', formatBitrate(q?.recvBitrate ?? 0)),
        stat('Round trip', ms(q?.rtt)),
        stat('Packet loss', pct(q?.loss ?? NaN), (q?.loss ?? 0) >= 0.02 ? 'bad' : ''),
        stat('Decrypted frames', String(e.decrypted ?? 0)),
        stat('Decrypt failures', String(e.failures ?? 0), e.failures > 0 ? 'bad' : ''),
        // Remote media the server named as someone else's than the KID of its frames says.
        stat('Source mismatches', String(e.sourceMismatches ?? 0), e.sourceMismatches > 0 ? 'bad' : ''),
      ),
      h(
        'div',
        { class: 'key-line' },
        icon('lock'),
        e.generation === null || e.generation === undefined
          ? 'No sending key (watching only)'
          : `Sending key: generation ${e.generation}, step ${e.step}`,
        e.refusedEnvelopes ? h('span', { class: 'bad' }, ` · ${e.refusedEnvelopes} key envelopes refused`) : null,
      ),
      // Server refusals, with their codes (banners say them in words, or not at all when they
      // are a normal race such as a subscription to a track that just went away).
      state.serverErrors?.length
        ? h(
            'div',
            { class: 'server-errors' },
            h('h3', {}, 'Server messages'),
            h('ul', {}, state.serverErrors.slice(-5).map((x) => h('li', {}, h('code', {}, x.code), ` ${x.message}`))),
          )
        : null,
      out.length
        ? h(
            'table',
            { class: 'qtable' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Layer sent'), h('th', {}, 'Resolution'), h('th', {}, 'Bitrate'), h('th', {}, 'Limited by'))),
            h(
              'tbody',
              {},
              out.map((o) =>
                h('tr', {}, h('td', {}, o.rid ?? '–'), h('td', {}, o.width ? `${o.width}×${o.height}` : 'off'), h('td', {}, formatBitrate(o.bitrate)), h('td', {}, o.limitation ?? '–')),
              ),
            ),
          )
        : null,
      h(
        'table',
        { class: 'qtable' },
        h(
          'thead',
          {},
          h('tr', {}, h('th', {}, 'Receiving from'), h('th', {}, 'Picture (layer)'), h('th', {}, 'Bitrate'), h('th', {}, 'Loss'), h('th', { title: 'Frames that failed to decrypt' }, 'Fail.')),
        ),
        h(
          'tbody',
          {},
          [...state.participants.values()]
            .filter((p) => !p.self)
            .map((p) => {
              const pq = p.quality;
              return h(
                'tr',
                {},
                h('td', { class: 'who', title: p.name }, qualityBars(pq), ' ', p.name),
                h('td', {}, pq?.width ? `${pq.width}×${pq.height}` : 'audio', pq?.layer ? h('small', {}, ` ${pq.layer}`) : null),
                h('td', {}, pq ? formatBitrate(pq.bitrate) : '–'),
                h('td', {}, pq ? pct(pq.loss) : '–'),
                h('td', { class: pq?.decryptFailures ? 'bad' : '' }, String(pq?.decryptFailures ?? 0)),
              );
            }),
        ),
      ),
    );
  }
}
