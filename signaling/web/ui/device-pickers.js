/**
 * The camera, microphone and speaker pickers, shared by the pre-join screen and the in-call
 * devices panel: a labelled `<select>` per kind, redrawn only when its list or choice changes
 * (so keyboard focus and an open list survive the page's redraws).
 *
 * @module ui/device-pickers
 */
import { h, icon } from './dom.js';

/** A picker: `{root, select}`; `onpick(id)` when the user chooses another device. */
export function devicePicker({ name, label, glyph, onpick }) {
  const select = h('select', { name, 'aria-label': label, onchange: () => onpick(select.value) });
  const root = h('label', { class: 'picker' }, h('span', { class: 'picker-label' }, icon(glyph), label), select);
  return { root, select };
}

/**
 * Fills `picker` with `devices` (`[{id, label}]`) and selects `chosen`; with no device the
 * picker says `none` and is disabled.
 */
export function updatePicker(picker, devices, chosen, none) {
  const key = JSON.stringify([devices, chosen ?? null, none]);
  if (picker.key === key) return;
  picker.key = key;
  const { select } = picker;
  if (!devices.length) {
    select.replaceChildren(h('option', { value: '' }, none));
    select.disabled = true;
    return;
  }
  select.disabled = false;
  select.replaceChildren(...devices.map((d) => h('option', { value: d.id }, d.label)));
  // A track opened on the default device may report an id the list names "default".
  select.value = devices.some((d) => d.id === chosen) ? chosen : devices[0].id;
}
