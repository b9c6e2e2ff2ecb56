/**
 * The security panel: the call security code everyone in the call sees (compare it aloud), and
 * per participant the safety number (computed on demand: 2 × 5,201 SHA-512) with its QR code, the
 * emoji sequence both sides compare ("They match" marks the peer verified; "They don't match"
 * warns of a possible interception and verifies nothing), a persistent "verified" mark, and the
 * warning when a known identity's key changed. Confirmation is local to each side (Signal style,
 * docs/architecture.md): nothing is sent to the peer.
 *
 * @module ui/verification
 */
import { h, icon, replace } from './dom.js';
import { qrCanvas } from './qr-code.js';

/** The 25-digit code as five groups. */
export function codeGroups(code) {
  return (String(code ?? '').match(/\d{1,5}/g) ?? []).slice(0, 5);
}

/** Codes are cached per device and identity key: a device that comes back with another key gets new ones. */
function codesKey(p) {
  return `${p.device}\u0000${Array.from(p.identityKey ?? []).join(',')}`;
}

/** The 60-digit safety number as twelve groups of 5. */
function numberGroups(digits) {
  return String(digits).match(/\d{1,5}/g) ?? [];
}

/**
 * Draws the security panel. `actions.verificationCodes(device)` resolves with `{safetyNumber,
 * emoji}` (e2ee/emoji.mjs `pairVerification`); `actions.setVerified(device, bool)`.
 */
export class VerificationPanel {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    /** codesKey -> `{status: 'pending'|'ready'|'failed', safetyNumber, emoji, qr, problem}`. */
    this.codes = new Map();
    this.open = new Set();
    /** Devices whose emoji comparison is shown. */
    this.comparing = new Set();
    /** Devices whose emoji the user said do not match (warned until they match or the panel forgets them). */
    this.mismatched = new Set();
    /** What the last render showed (see `render`). */
    this.shown = null;
  }

  _codes(p, state) {
    const key = codesKey(p);
    if (this.codes.has(key)) return this.codes.get(key);
    this.codes.set(key, { status: 'pending' });
    Promise.resolve(this.actions.verificationCodes(p.device))
      .then(({ safetyNumber, emoji }) => this.codes.set(key, { status: 'ready', safetyNumber, emoji, qr: null }))
      .catch((e) => this.codes.set(key, { status: 'failed', problem: e.message }))
      .finally(() => this.render(state));
    return this.codes.get(key);
  }

  _toggle(device, state) {
    if (this.open.has(device)) {
      this.open.delete(device);
      this.comparing.delete(device);
    } else {
      this.open.add(device);
    }
    this.render(state);
  }

  _compare(device, state) {
    if (this.comparing.has(device)) this.comparing.delete(device);
    else this.comparing.add(device);
    this.render(state);
  }

  /** "Mark as verified" (after comparing the number or its QR code) or "Clear verified mark". */
  _mark(p, verified) {
    if (verified) this.mismatched.delete(p.device);
    return this.actions.setVerified(p.device, verified);
  }

  /** "They match": the peer's current key is verified (persisted by `setVerified`). */
  async _match(p, state) {
    this.mismatched.delete(p.device);
    this.comparing.delete(p.device);
    await this.actions.setVerified(p.device, true);
    this.render(state);
  }

  /** "They don't match": warn, and verify nothing (a mark set before is cleared). */
  async _mismatch(p, state) {
    this.mismatched.add(p.device);
    this.comparing.delete(p.device);
    if (p.verified) await this.actions.setVerified(p.device, false);
    this.render(state);
  }

  _qr(codes, p) {
    if (!codes.qr) {
      const spoken = numberGroups(codes.safetyNumber).join(' ');
      codes.qr = qrCanvas(codes.safetyNumber, { scale: 4, label: `Safety number with ${p.name} as a QR code: ${spoken}` });
      codes.qr.classList.add('qr');
    }
    return codes.qr;
  }

  _details(p, state) {
    const codes = this._codes(p, state);
    if (codes.status === 'pending') return h('div', { class: 'safety' }, h('div', { class: 'muted' }, 'Computing…'));
    if (codes.status === 'failed') return h('div', { class: 'safety' }, h('div', { class: 'muted' }, `unavailable: ${codes.problem}`));
    const comparing = this.comparing.has(p.device);
    const groups = numberGroups(codes.safetyNumber);
    return h(
      'div',
      { class: 'safety' },
      h(
        'div',
        { class: 'safety-codes' },
        h('div', { class: 'safety-number', 'aria-label': `Safety number with ${p.name}` }, groups.map((g) => h('span', {}, g))),
        h('figure', { class: 'safety-qr' }, this._qr(codes, p), h('figcaption', {}, 'The same number as a QR code')),
      ),
      h('p', { class: 'hint' }, `Compare with ${p.name}'s screen, in person or on a call you trust.`),
      h(
        'div',
        { class: 'safety-actions' },
        h(
          'button',
          { class: p.verified ? 'secondary' : 'primary', dataset: { focus: `mark-${p.device}` }, onclick: () => this._mark(p, !p.verified) },
          p.verified ? 'Clear verified mark' : 'Mark as verified',
        ),
        h('button', { class: 'secondary compare-emoji', 'aria-expanded': String(comparing), dataset: { focus: `compare-${p.device}` }, onclick: () => this._compare(p.device, state) }, comparing ? 'Hide emoji' : 'Compare emoji'),
      ),
      comparing ? this._emoji(p, codes, state) : null,
      this.mismatched.has(p.device)
        ? h(
            'div',
            { class: 'emoji-mismatch', role: 'alert' },
            icon('warn'),
            h('span', {}, `The emoji differ: someone may be intercepting your connection with ${p.name}. ${p.name} is not verified. Do not share anything sensitive; check again in person or through a channel you trust.`),
          )
        : null,
    );
  }

  _emoji(p, codes, state) {
    const { symbols, words } = codes.emoji;
    const half = symbols.length / 2;
    const row = (list) => h('ol', { class: 'emoji-row' }, list.map((s) => h('li', { class: 'emoji-symbol' }, h('span', { class: 'emoji-glyph', 'aria-hidden': 'true' }, s.emoji), h('span', { class: 'emoji-word' }, s.word))));
    return h(
      'section',
      { class: 'emoji-compare', 'aria-label': `Emoji to compare with ${p.name}` },
      h('p', { class: 'hint' }, `${p.name} sees the same 16 emoji in the same order on their screen. Compare them together, or read the words aloud on a call you trust.`),
      h('div', { class: 'emoji-sequence', 'aria-label': `Emoji sequence: ${words}`, dataset: { words } }, row(symbols.slice(0, half)), row(symbols.slice(half))),
      h(
        'div',
        { class: 'emoji-answer' },
        h('button', { class: 'match', dataset: { focus: `match-${p.device}` }, onclick: () => this._match(p, state) }, icon('check'), 'They match'),
        h('button', { class: 'mismatch', dataset: { focus: `mismatch-${p.device}` }, onclick: () => this._mismatch(p, state) }, icon('warn'), "They don't match"),
      ),
    );
  }

  /** Renders from `state`. */
  render(state) {
    const groups = codeGroups(state.securityCode);
    const others = [...state.participants.values()].filter((p) => !p.self);
    const verifiedCount = others.filter((p) => p.verified).length;
    // Redraw only when something shown here changed: the call changes many times a second
    // (speaking levels, stats), and a button replaced between press and release loses the click.
    const shown = JSON.stringify([
      state.securityCode, state.recorded,
      others.map((p) => [p.device, p.name, p.role, p.verified, p.keyChanged, codesKey(p)]),
      [...this.open], [...this.comparing], [...this.mismatched], [...this.codes].map(([k, c]) => [k, c.status]),
    ]);
    if (shown === this.shown) return;
    this.shown = shown;
    replace(
      this.root,
      h('h2', {}, icon('shield'), 'Security'),
      h(
        'section',
        { class: 'code-card' },
        h('div', { class: 'caption' }, 'Call security code'),
        h('div', { class: 'code', 'aria-label': 'Call security code' }, groups.length ? groups.map((g) => h('span', {}, g)) : h('span', { class: 'muted' }, '…')),
        h('p', { class: 'hint' }, 'Everyone in this call sees the same code. Read it aloud: if anyone sees a different one, the call is not private.'),
      ),
      state.recorded
        ? h(
            'section',
            { class: `recorded-card ${state.recorded.verified ? '' : 'bad'}` },
            h('div', { class: 'caption' }, icon('rec', 'rec-dot'), 'This call is recorded'),
            h(
              'p',
              { class: 'hint' },
              state.recorded.verified
                ? `The room's signed policy names ${state.recorded.recorders.length === 1 ? 'a recorder' : `${state.recorded.recorders.length} recorders`} (${state.recorded.recorders.join(', ')}). Your media keys are also sent to it.${Number.isInteger(state.recorded.retentionDays) ? ` Recordings are kept ${state.recorded.retentionDays} ${state.recorded.retentionDays === 1 ? 'day' : 'days'}.` : ''}`
                : `The recording policy could not be verified (${state.recorded.problem ?? 'unknown'}); no recorder receives keys.`,
            ),
          )
        : null,
      h('div', { class: 'caption list-caption' }, `Participants · ${verifiedCount} of ${others.length} verified`),
      h(
        'ul',
        { class: 'people' },
        others.length === 0 ? h('li', { class: 'muted' }, 'Nobody else is here yet.') : null,
        others.map((p) => {
          const open = this.open.has(p.device);
          return h(
            'li',
            { class: `person ${p.keyChanged ? 'changed' : ''} ${p.verified ? 'is-verified' : ''}`, dataset: { device: p.device } },
            h(
              'div',
              { class: 'person-row' },
              h('span', { class: 'person-name' }, p.name, h('small', {}, ` ${p.role}`)),
              p.keyChanged
                ? h('span', { class: 'pill warn' }, icon('warn'), 'Key changed')
                : this.mismatched.has(p.device) && !p.verified
                  ? h('span', { class: 'pill warn' }, icon('warn'), 'Emoji differ')
                  : p.verified
                    ? h('span', { class: 'pill ok' }, icon('check'), 'Verified')
                    : h('span', { class: 'pill' }, 'Not verified'),
              h('button', { class: 'link', onclick: () => this._toggle(p.device, state) }, open ? 'Hide' : 'Verify'),
            ),
            open ? this._details(p, state) : null,
          );
        }),
      ),
    );
  }
}
