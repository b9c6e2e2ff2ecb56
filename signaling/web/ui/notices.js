/**
 * Who joined and who left, and the "only one here" card.
 *
 * `PresenceLog` (sans-IO, time passed in) compares the participants with tiles from one redraw
 * to the next and keeps "Bea joined" / "Bea left" for `NOTICE_MS`; the first look is the
 * baseline (the people already here when the page joined are not announced). It also says
 * "Bea raised their hand" when a hand goes up (from the raised hands of successive redraws,
 * hands.js; the same baseline rule). `PresenceNotices`
 * draws them in a polite live region. `AloneCard` says "You are the only one here" with a Copy
 * link button while nobody else with a tile is in the call; the link is the room's lobby link,
 * never this page's own address (its fragment holds this device's token).
 *
 * @module ui/notices
 */
import { h, icon } from './dom.js';

/** How long a join or leave notice stays. */
export const NOTICE_MS = 6000;

/** Participants announced when they come and go: people with a tile (not recorders or broadcast viewers). */
export function announced(p) {
  return !p.self && (p.role === 'caller' || p.role === 'presenter');
}

/** Join and leave notices from successive rosters. */
export class PresenceLog {
  constructor({ ttlMs = NOTICE_MS } = {}) {
    this.ttlMs = ttlMs;
    this.known = null; // device -> name
    this.handsUp = null; // devices whose raised hand was seen
    this.entries = [];
    this.seq = 0;
  }

  /**
   * Looks at `participants` (a Map of device -> participant) and the devices with a raised hand
   * (`raised`, hands.js `queue`) at `now`; returns the live notices.
   */
  observe(participants, now, raised = []) {
    const current = new Map();
    for (const p of participants.values()) if (announced(p)) current.set(p.device, p.name);
    if (this.known) {
      for (const [device, name] of current) if (!this.known.has(device)) this._add('joined', device, name, now);
      for (const [device, name] of this.known) if (!current.has(device)) this._add('left', device, name, now);
    }
    this.known = current;
    // Anyone but this device and recorders may raise a hand (a broadcast viewer too).
    const up = new Set(raised.filter((d) => participants.has(d) && !participants.get(d).self && participants.get(d).role !== 'recorder'));
    if (this.handsUp) for (const d of up) if (!this.handsUp.has(d)) this._add('hand', d, participants.get(d).name, now);
    this.handsUp = up;
    this.entries = this.entries.filter((e) => now - e.at < this.ttlMs);
    return this.entries;
  }

  /** When the next notice expires (ms), or null. */
  nextExpiry() {
    return this.entries.length ? Math.min(...this.entries.map((e) => e.at + this.ttlMs)) : null;
  }

  _add(kind, device, name, now) {
    // The same person back within the notice time: the newer notice replaces the older one (a
    // hand notice only another hand notice).
    const hand = kind === 'hand';
    this.entries = this.entries.filter((e) => e.device !== device || (e.kind === 'hand') !== hand);
    const text = hand ? `${name} raised their hand` : `${name} ${kind}`;
    this.entries.push({ id: ++this.seq, kind, device, name, text, at: now });
  }
}

/** Draws the join/leave notices; each element is kept while its notice lives. */
export class PresenceNotices {
  constructor() {
    this.root = h('div', { class: 'presence-notices', role: 'status', 'aria-live': 'polite' });
    this.shown = new Map(); // notice id -> element
  }

  render(entries) {
    const live = new Set(entries.map((e) => e.id));
    for (const [id, el] of this.shown) {
      if (!live.has(id)) {
        el.remove();
        this.shown.delete(id);
      }
    }
    for (const e of entries) {
      if (this.shown.has(e.id)) continue;
      const glyph = e.kind === 'hand' ? h('span', { class: 'hand-glyph', 'aria-hidden': 'true' }, '✋') : icon('users');
      const el = h('div', { class: `presence ${e.kind}`, dataset: { device: e.device } }, glyph, h('span', {}, e.text));
      this.shown.set(e.id, el);
      this.root.append(el);
    }
  }
}

/** The room's lobby link, for inviting: the page's address with `?room=` only (no token, no fragment). */
export function inviteLink(location, room) {
  return `${location.origin}${location.pathname}?room=${encodeURIComponent(room)}`;
}

/** "You are the only one here" with a Copy link button; built once, shown or hidden. */
export class AloneCard {
  constructor({ link, copy = (text) => navigator.clipboard.writeText(text) }) {
    this.link = link;
    this.copy = copy;
    this.status = h('span', { class: 'copy-status', role: 'status', 'aria-live': 'polite' });
    this.button = h('button', { class: 'primary copy-link', dataset: { ctl: 'copy-link' }, onclick: () => this._copy() }, 'Copy link');
    this.room = '';
    this.root = h(
      'div',
      { class: 'alone', hidden: true, role: 'region', 'aria-label': 'Waiting for others' },
      h('strong', {}, 'You are the only one here'),
      h('p', {}, 'Share the room link. Each person joins with their own invitation for this room.'),
      h('div', { class: 'alone-actions' }, this.button, this.status),
    );
  }

  render(alone, room) {
    this.room = room ?? '';
    this.root.hidden = !alone;
  }

  async _copy() {
    const text = this.link(this.room);
    try {
      await this.copy(text);
      this.status.textContent = 'Link copied';
    } catch (err) {
      // No clipboard (permission refused, insecure page): show the link to copy by hand.
      console.warn(`copy link: ${err.name}: ${err.message}`);
      this.status.textContent = text;
    }
  }
}
