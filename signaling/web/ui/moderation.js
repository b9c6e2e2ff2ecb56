/**
 * Moderator controls (drawn for moderators only; the service refuses the actions of anyone
 * else): the top bar's Lock and Lobby toggles and "End for all", the lobby's waiting list with
 * Admit and Deny, and the menu on each other participant's tile (Ask to mute, Remove).
 *
 * @module ui/moderation
 */
import { h, icon, replace } from './dom.js';

/**
 * Draws the top bar's moderator controls into `el` from `mod` (the `Moderation` state); redraws
 * only when they change (a button replaced between press and release loses its click).
 */
export function renderModeratorBar(el, mod, act) {
  const key = JSON.stringify([mod?.moderator, mod?.locked, mod?.lobby]);
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  if (!mod?.moderator) {
    replace(el);
    return;
  }
  const toggle = (name, on, label, onAction, offAction) =>
    h('button', { class: `mod-toggle ${on ? 'on' : 'off'}`, 'aria-pressed': String(on), dataset: { mod: name }, title: label, onclick: () => act(on ? offAction : onAction) }, label);
  replace(
    el,
    toggle('lock', mod.locked, mod.locked ? 'Locked' : 'Lock', 'lock', 'unlock'),
    toggle('lobby', mod.lobby, mod.lobby ? 'Lobby on' : 'Lobby', 'lobby_on', 'lobby_off'),
    h('button', { class: 'mod-end danger', dataset: { mod: 'end' }, title: 'End the call for everyone', onclick: () => act('end_call') }, 'End for all'),
  );
}

/** Draws the lobby's waiting list (moderators only) into `el`, with Admit and Deny per device. */
export function renderWaitingList(el, mod, act) {
  const waiting = mod?.moderator ? mod.waiting : [];
  const key = JSON.stringify(waiting);
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  if (!waiting.length) {
    replace(el);
    return;
  }
  replace(
    el,
    h('div', { class: 'waiting-title' }, icon('users'), `Waiting to join (${waiting.length})`),
    waiting.map((w) =>
      h(
        'div',
        { class: 'waiting-entry', dataset: { device: w.device } },
        h('span', { class: 'waiting-name' }, w.name || w.identity),
        h('button', { class: 'primary', dataset: { mod: 'admit' }, onclick: () => act('admit', w.device) }, 'Admit'),
        h('button', { class: 'link', dataset: { mod: 'deny' }, onclick: () => act('deny', w.device) }, 'Deny'),
      ),
    ),
  );
}

/**
 * The menu on another participant's tile, for a moderator: a button that opens Ask to mute and
 * Remove. `null` for this device's own tile or when this device does not moderate.
 */
export function tileMenu(p, mod, act) {
  if (!mod?.moderator || p.self) return null;
  // Choosing an item closes the menu.
  const item = (name, action, glyph, label, extra = {}) =>
    h('button', { role: 'menuitem', dataset: { mod: name }, onclick: () => { items.hidden = true; act(action, p.device); }, ...extra }, icon(glyph), label);
  const items = h(
    'div',
    { class: 'tile-menu-items', hidden: true, role: 'menu' },
    item('ask-mute', 'ask_mute', 'micOff', 'Ask to mute'),
    item('remove', 'remove', 'leave', 'Remove', { class: 'danger' }),
  );
  const open = h('button', { class: 'tile-menu-open', title: 'Moderate', 'aria-label': `Moderate ${p.name}`, 'aria-haspopup': 'menu', onclick: () => { items.hidden = !items.hidden; } }, '⋮');
  return h('div', { class: 'tile-menu' }, open, items);
}
