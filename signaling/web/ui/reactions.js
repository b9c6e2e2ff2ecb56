/**
 * Reactions on screen: the emoji floating over a sender's tile (`TileReactions`, one per tile,
 * each reaction drawn once and removed when it expires) and the picker in the controls
 * (`ReactionPicker`: a "React" button that opens six emoji buttons; Escape closes it). What a
 * reaction is and how often one may go is reactions.js.
 *
 * @module ui/reactions
 */
import { h } from './dom.js';
import { REACTIONS } from '../reactions.js';

/** The reactions floating over one tile. */
export class TileReactions {
  constructor() {
    this.root = h('div', { class: 'tile-reactions' });
    this.shown = new Map(); // reaction id -> element
  }

  /** Draws `entries` (`{id, emoji}` of this tile's sender, still live); `name` labels them. */
  render(entries, name) {
    const live = new Set(entries.map((e) => e.id));
    for (const [id, el] of this.shown) {
      if (!live.has(id)) {
        el.remove();
        this.shown.delete(id);
      }
    }
    for (const e of entries) {
      if (this.shown.has(e.id)) continue;
      // A little sideways drift per reaction, so a burst does not stack on one spot.
      const el = h('span', { class: 'reaction', role: 'img', 'aria-label': `${name} reacted ${e.emoji}`, style: { '--drift': `${(e.id % 5) * 12 - 24}px` } }, e.emoji);
      this.shown.set(e.id, el);
      this.root.append(el);
    }
  }
}

/** The controls' "React" button and its six emoji (built once, kept across redraws). */
export class ReactionPicker {
  /** @param {(emoji: string) => void} react */
  constructor(react) {
    this.items = h(
      'div',
      { class: 'reaction-picker', role: 'group', 'aria-label': 'Reactions', hidden: true },
      REACTIONS.map((r) => h('button', { class: 'reaction-btn', title: r.name, 'aria-label': `React ${r.name}`, dataset: { reaction: r.emoji }, onclick: () => react(r.emoji) }, r.emoji)),
    );
    this.button = h('button', { class: 'ctl off panel-btn react', title: 'React', 'aria-label': 'React', 'aria-expanded': 'false', 'aria-haspopup': 'true', dataset: { ctl: 'react' }, onclick: () => this.setOpen(this.items.hidden) }, h('span', { class: 'react-glyph', 'aria-hidden': 'true' }, '☺'), h('span', {}, 'React'));
    this.root = h('span', { class: 'react-wrap', onkeydown: (e) => this._key(e) }, this.button, this.items);
  }

  /** Opens or closes the emoji; opening focuses the first. */
  setOpen(open) {
    this.items.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    this.button.classList.toggle('on', open);
    if (open) this.items.querySelector('button')?.focus();
  }

  _key(e) {
    if (e.key === 'Escape' && !this.items.hidden) {
      e.stopPropagation();
      this.setOpen(false);
      this.button.focus();
    }
  }
}
