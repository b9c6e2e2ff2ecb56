/**
 * The security panel: the call security code everyone in the call sees (compare it aloud), and
 * per participant the safety number (computed on demand: 2 × 5,201 SHA-512), a persistent
 * "verified" mark, and the warning when a known identity's key changed.
 *
 * @module ui/verification
 */
import { h, icon, replace } from './dom.js';

/** The 25-digit code as five groups. */
export function codeGroups(code) {
  return (String(code ?? '').match(/\d{1,5}/g) ?? []).slice(0, 5);
}

/** Draws the security panel. `actions.safetyNumber(device)` resolves with 12 groups; `actions.setVerified(device, bool)`. */
export class VerificationPanel {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    /** device -> safety number text (once computed) or 'pending'. */
    this.numbers = new Map();
    this.open = new Set();
  }

  _toggle(device, state) {
    if (this.open.has(device)) this.open.delete(device);
    else {
      this.open.add(device);
      if (!this.numbers.has(device)) {
        this.numbers.set(device, 'pending');
        Promise.resolve(this.actions.safetyNumber(device))
          .then((n) => this.numbers.set(device, n))
          .catch((e) => this.numbers.set(device, `unavailable: ${e.message}`))
          .finally(() => this.render(state));
      }
    }
    this.render(state);
  }

  /** Renders from `state`. */
  render(state) {
    const groups = codeGroups(state.securityCode);
    const others = [...state.participants.values()].filter((p) => !p.self);
    const verifiedCount = others.filter((p) => p.verified).length;
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
          const number = this.numbers.get(p.device);
          return h(
            'li',
            { class: `person ${p.keyChanged ? 'changed' : ''} ${p.verified ? 'is-verified' : ''}`, dataset: { device: p.device } },
            h(
              'div',
              { class: 'person-row' },
              h('span', { class: 'person-name' }, p.name, h('small', {}, ` ${p.role}`)),
              p.keyChanged
                ? h('span', { class: 'pill warn' }, icon('warn'), 'Key changed')
                : p.verified
                  ? h('span', { class: 'pill ok' }, icon('check'), 'Verified')
                  : h('span', { class: 'pill' }, 'Not verified'),
              h('button', { class: 'link', onclick: () => this._toggle(p.device, state) }, open ? 'Hide' : 'Safety number'),
            ),
            open
              ? h(
                  'div',
                  { class: 'safety' },
                  number === 'pending' || !number
                    ? h('div', { class: 'muted' }, 'Computing…')
                    : h('div', { class: 'safety-number', 'aria-label': `Safety number with ${p.name}` }, String(number).split(' ').map((g) => h('span', {}, g))),
                  h('p', { class: 'hint' }, `Compare with ${p.name}'s screen, in person or on a call you trust.`),
                  h(
                    'button',
                    { class: p.verified ? 'secondary' : 'primary', onclick: () => this.actions.setVerified(p.device, !p.verified) },
                    p.verified ? 'Clear verified mark' : 'Mark as verified',
                  ),
                )
              : null,
          );
        }),
      ),
    );
  }
}
