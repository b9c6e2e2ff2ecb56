/**
 * Raised hands on screen: the controls' "Raise hand" toggle (`aria-pressed`, the number of
 * hands up as a badge) and the queue of raised hands in the order they went up, each with a
 * "Lower" button for moderators (the service refuses `lower_hand` from anyone else). The hand
 * mark on a tile is drawn by ui/grid.js; "Bea raised their hand" by ui/notices.js.
 *
 * @module ui/hands
 */
import { h, replace } from './dom.js';

/** The controls' raise-hand toggle for `hands` (the `Hands` state). */
export function handButton(hands, onclick) {
  const up = !!hands?.mine;
  const count = hands?.queue.length ?? 0;
  const label = up ? 'Lower hand' : 'Raise hand';
  const name = count ? `${label}, ${count} ${count === 1 ? 'hand' : 'hands'} raised` : label;
  return h(
    'button',
    { class: `ctl ${up ? 'on' : 'off'} neutral hand-btn`, 'aria-pressed': String(up), title: label, 'aria-label': name, dataset: { ctl: 'hand' }, onclick },
    h('span', { class: 'hand-glyph', 'aria-hidden': 'true' }, '✋'),
    h('span', {}, label),
    count ? h('span', { class: 'unread-badge hand-count', 'aria-hidden': 'true' }, String(count)) : null,
  );
}

/**
 * Draws the queue of raised hands into `el` ("Raised hands (2)": 1. Bea, 2. You), redrawn only
 * when it changes. `name(device)` is the participant's name; `lower(device)` is offered to
 * moderators.
 */
export function renderHandQueue(el, { hands, self, moderator, name, lower }) {
  const queue = hands?.queue ?? [];
  const rows = queue.map((d) => [d, d === self ? 'You' : name(d)]);
  const key = JSON.stringify([rows, moderator]);
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  if (!rows.length) {
    replace(el);
    return;
  }
  replace(
    el,
    h('div', { class: 'hand-queue-title' }, h('span', { 'aria-hidden': 'true' }, '✋ '), `Raised hands (${rows.length})`),
    h(
      'ol',
      { class: 'hand-queue-list' },
      rows.map(([device, who], i) =>
        h(
          'li',
          { class: 'hand-entry', dataset: { device } },
          h('span', { class: 'hand-pos', 'aria-hidden': 'true' }, `${i + 1}.`),
          h('span', { class: 'hand-name' }, who),
          moderator && device !== self ? h('button', { class: 'link', dataset: { mod: 'lower-hand' }, 'aria-label': `Lower ${who}'s hand`, onclick: () => lower(device) }, 'Lower') : null,
        ),
      ),
    ),
  );
}
