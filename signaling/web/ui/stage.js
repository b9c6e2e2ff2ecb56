/**
 * The stage's screen share and the presenter's own bar. A remote screen share shows on the
 * stage as its own tile ("Alice is presenting"), apart from Alice's camera tile, which stays in
 * the filmstrip; the stage empties as soon as the share stops (her `media_state` says so, or
 * the track is gone), so no frozen last frame stays behind. This device's own share is not put
 * on its stage (a picture of the screen inside itself): it gets a "You are sharing your
 * screen" bar with a Stop button instead.
 *
 * @module ui/stage
 */
import { h, icon, replace } from './dom.js';

export { screenKey } from '../tile-order.js';

/**
 * Whether `p`'s screen share is live: a track that has not ended, and (for another device) its
 * last `media_state` did not say the share stopped.
 */
export function sharingScreen(p) {
  const t = p?.screenTrack;
  return !!t && t.readyState !== 'ended' && (p.self || p.screenOn !== false);
}

/**
 * The participant whose screen goes on the stage: with a pin, the pinned one if sharing (a
 * pinned camera wins over someone else's screen, as a pin does elsewhere); else the first remote
 * sharer. Null: no screen on the stage.
 */
export function presenterOf(list, pinned) {
  const pinnedOne = list.find((p) => p.device === pinned);
  if (pinnedOne) return !pinnedOne.self && sharingScreen(pinnedOne) ? pinnedOne : null;
  return list.find((p) => !p.self && sharingScreen(p)) ?? null;
}

/** One screen-share tile, reused while the same device shares. */
export class ScreenTile {
  constructor(device) {
    this.device = device;
    this.video = h('video', { autoplay: true, playsinline: true, muted: true });
    this.video.muted = true;
    this.caption = h('span', { class: 'name' });
    this.el = h(
      'div',
      { class: 'tile screen has-video', role: 'region', dataset: { screen: device } },
      this.video,
      h('div', { class: 'label presenting' }, icon('screen'), this.caption),
    );
    this.track = null;
  }

  update(p) {
    const text = `${p.name} is presenting`;
    if (this.caption.textContent !== text) {
      this.caption.textContent = text;
      this.el.setAttribute('aria-label', `${p.name}'s screen`);
    }
    if (this.track !== p.screenTrack) {
      this.track = p.screenTrack;
      this.video.srcObject = new MediaStream([p.screenTrack]);
      this.video.play?.().catch(() => {});
    }
  }

  close() {
    this.video.srcObject = null;
    this.track = null;
  }
}

/**
 * The presenter's bar: "You are sharing your screen" and Stop. Built once and shown or hidden,
 * so the Stop button keeps its focus across redraws.
 */
export class SharingBar {
  constructor(stop) {
    this.button = h('button', { class: 'primary stop-sharing', dataset: { ctl: 'stop-sharing' }, onclick: stop }, 'Stop sharing');
    this.root = h('div', { class: 'sharing-bar', role: 'status', hidden: true }, icon('screen'), h('span', {}, 'You are sharing your screen'), this.button);
  }

  render(sharing) {
    this.root.hidden = !sharing;
  }
}

/** Replaces the stage's content with `el` (or empties it) only when it differs. */
export function setStage(stage, el) {
  if (el ? stage.firstChild === el && stage.childElementCount === 1 : stage.childElementCount === 0) return;
  if (el) stage.replaceChildren(el);
  else replace(stage);
}
