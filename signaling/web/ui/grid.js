/**
 * The participant grid: one tile per visible participant (camera video, or initials when the
 * camera is off or missing; name; muted-microphone, camera-off and verified marks with
 * accessible labels; a compact quality indicator), the active speaker highlighted, a large
 * stage for a screen share (its own tile: the presenter's camera stays in the filmstrip) or a
 * pinned participant, and a "+N more" tile beyond last-N.
 *
 * Tiles are kept per device and reused, so a video element is attached to its track once. Their
 * order is stable (tile-order.js: this device first, then join order; the active speaker is
 * brought into view only from off-screen, at most once per few seconds), and the DOM is only
 * touched when the order changes, so a focused tile button keeps its focus.
 *
 * Two views (`grid.view`, ui/view-mode.js): the grid, and the speaker view, where the active
 * speaker's camera tile (unless a screen share or a pinned tile holds the stage) is large and
 * the others form a filmstrip in the same tile order. A raised hand shows as a mark on its
 * tile, a reaction floats over the sender's tile for a few seconds (ui/reactions.js).
 *
 * @module ui/grid
 */
import { h, icon, replace } from './dom.js';
import { presenterOf, ScreenTile, screenKey, setStage } from './stage.js';
import { TileOrder } from '../tile-order.js';
import { tileMenu } from './moderation.js';
import { TileReactions } from './reactions.js';
import { featuredDevice } from './view-mode.js';

/** Tiles shown before the rest collapse into "+N more" (the SFU's last-N is 25; a screen fits fewer). */
export const DEFAULT_VISIBLE_TILES = 12;

/** Initials of a display name (at most two letters). */
export function initials(name) {
  const words = String(name ?? '?').trim().split(/[\s_.-]+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[1][0] : (words[0] ?? '?').slice(0, 2)).toUpperCase();
}

const HUES = [210, 260, 330, 20, 160, 190, 45, 290];
function hueFor(device) {
  let x = 0;
  for (const c of String(device)) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return HUES[x % HUES.length];
}

/**
 * The participants that get a tile: not recorders, not broadcast viewers (they publish nothing;
 * a presenter may have hundreds; the top bar counts them); a watch-only viewer does not see
 * itself. In roster order.
 */
export function tileParticipants(state) {
  return [...state.participants.values()].filter((p) => p.role !== 'recorder' && !(p.role === 'viewer' && !p.self) && !(p.self && state.self && !state.self.canPublish));
}

/** The quality indicator: three bars, coloured by level. */
export function qualityBars(quality, { title } = {}) {
  const level = quality?.level ?? 'unknown';
  const lit = { good: 3, fair: 2, poor: 1 }[level] ?? 0;
  return h(
    'span',
    { class: `bars bars-${level}`, title: title ?? `Connection: ${level}` },
    [1, 2, 3].map((i) => h('i', { class: i <= lit ? 'on' : '' })),
  );
}

/** Draws the grid into `root` from `state`; `actions.pin(device)` pins. */
export class Grid {
  constructor(root, actions, { visibleTiles = DEFAULT_VISIBLE_TILES } = {}) {
    this.root = root;
    this.actions = actions;
    this.visibleTiles = visibleTiles;
    this.tiles = new Map();
    this.order = new TileOrder();
    /** 'grid' | 'speaker' (the call view sets it from its `ViewMode`). */
    this.view = 'grid';
    /** The device featured on the stage in speaker view, or null. */
    this.featured = null;
    /** The screen share on the stage, or null. */
    this.screen = null;
    /** Audio plays from every remote audio receiver, shown in a tile or not: receiver id -> {el, track}. */
    this.audios = new Map();
    this.stage = h('div', { class: 'stage' });
    this.grid = h('div', { class: 'grid' });
    this.audioBox = h('div', { class: 'audio-sinks', hidden: true });
    root.replaceChildren(this.stage, this.grid, this.audioBox);
  }

  _tile(p) {
    let t = this.tiles.get(p.device);
    if (!t) {
      const video = h('video', { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const avatar = h('div', { class: 'avatar', style: { '--hue': hueFor(p.device) } });
      const name = h('span', { class: 'name' });
      const marks = h('span', { class: 'marks' });
      const quality = h('span', { class: 'tile-quality' });
      const pin = h('button', { class: 'pin', title: 'Pin', 'aria-pressed': 'false', dataset: { focus: `pin:${p.device}` }, onclick: () => this.actions.pin?.(p.device) }, icon('pin'));
      const menu = h('div', { class: 'tile-menu-slot' });
      const reactions = new TileReactions();
      const el = h(
        'div',
        { class: 'tile', role: 'group', dataset: { device: p.device } },
        avatar, video,
        h('div', { class: 'label' }, marks, name),
        quality, pin, menu, reactions.root,
      );
      t = { el, video, avatar, name, marks, quality, pin, menu, reactions, moderated: false, track: null };
      this.tiles.set(p.device, t);
    }
    return t;
  }

  _update(t, p, state) {
    // A tile shows the camera; a screen share has its own tile on the stage (ui/stage.js).
    const track = p.videoTrack || null;
    // A remote camera turned off (its `media_state`) still has a track, sending black: initials.
    const cameraOff = p.self ? !state.local.cameraOn : !!p.videoOff;
    const showVideo = !!track && track.readyState !== 'ended' && !cameraOff;
    if (t.track !== track) {
      t.video.srcObject = track ? new MediaStream([track]) : null;
      t.track = track;
      if (track) t.video.play?.().catch(() => {});
    }
    t.el.classList.toggle('has-video', showVideo);
    t.el.classList.toggle('speaking', state.activeSpeaker === p.device && (p.speaking ?? 0) > 0.05);
    t.el.classList.toggle('active', state.activeSpeaker === p.device);
    t.el.classList.toggle('pinned', state.pinned === p.device);
    t.el.classList.toggle('featured', this.featured === p.device);
    t.el.classList.toggle('self', !!p.self);
    t.el.classList.toggle('key-changed', !!p.keyChanged);
    const who = p.self ? `${p.name} (you)` : p.name;
    if (t.el.getAttribute('aria-label') !== who) t.el.setAttribute('aria-label', who);
    if (t.avatar.textContent !== initials(p.name)) replace(t.avatar, h('span', {}, initials(p.name)));
    t.avatar.setAttribute('role', 'img');
    t.avatar.setAttribute('aria-label', cameraOff ? `${p.name}: camera off` : p.name);
    replace(t.name, p.self ? `${p.name} (you)` : p.name, p.role === 'presenter' ? h('em', { class: 'role' }, 'presenter') : null);
    const micOff = p.self ? !state.local.micOn : p.audioMuted;
    const hand = state.hands?.queue.indexOf(p.device) ?? -1;
    t.el.classList.toggle('hand-raised', hand >= 0);
    replace(
      t.marks,
      hand >= 0 ? h('span', { class: 'mark hand', title: `Hand raised (${hand + 1})`, role: 'img', 'aria-label': `${p.name}: hand raised` }, '✋') : null,
      micOff ? h('span', { class: 'mark muted', title: 'Muted', role: 'img', 'aria-label': `${p.name}: microphone muted` }, icon('micOff')) : null,
      cameraOff && !showVideo ? h('span', { class: 'mark camera-off', title: 'Camera off', role: 'img', 'aria-label': `${p.name}: camera off` }, icon('cameraOff')) : null,
      p.keyChanged
        ? h('span', { class: 'mark warn', title: 'Identity key changed' }, icon('warn'))
        : p.verified && !p.self
          ? h('span', { class: 'mark verified', title: 'Verified' }, icon('check'))
          : null,
    );
    const q = p.quality;
    const title = q
      ? `${q.level}: ${q.width ?? '?'}×${q.height ?? '?'}${q.layer ? ` (${q.layer})` : ''}, loss ${(q.loss * 100).toFixed(1)}%${q.decryptFailures ? `, ${q.decryptFailures} decrypt failures` : ''}`
      : 'No media yet';
    // The red count shows only while this sender's frames fail now (the encryption badge's rule,
    // e2ee-status.js): the few frames a key change loses in flight are no alarm (tooltip and
    // quality panel keep the total).
    const failingNow = !!q?.decryptFailures && !!state.e2ee?.status?.failingDevices?.includes(p.device);
    replace(t.quality, qualityBars(q, { title }), failingNow ? h('span', { class: 'fail-count', title: 'Frames that fail to decrypt' }, icon('lock'), String(q.decryptFailures)) : null);
    const pinned = state.pinned === p.device;
    t.pin.classList.toggle('on', pinned);
    t.pin.setAttribute('aria-pressed', String(pinned));
    const pinLabel = `${pinned ? 'Unpin' : 'Pin'} ${p.name}`;
    if (t.pin.getAttribute('aria-label') !== pinLabel) {
      t.pin.setAttribute('aria-label', pinLabel);
      t.pin.title = pinned ? 'Unpin' : 'Pin';
    }
    t.reactions.render(state.reactions?.entries.filter((r) => r.device === p.device) ?? [], p.name);
    // A moderator's menu on the others' tiles, built once (an open menu survives redraws).
    const moderated = !!state.moderation?.moderator && !p.self;
    if (moderated !== t.moderated) {
      t.moderated = moderated;
      replace(t.menu, moderated ? tileMenu(p, state.moderation, (a, d) => this.actions.moderate?.(a, d)) : null);
    }
  }

  /**
   * One audio element per remote audio receiver (`state.remoteAudio`): a receive slot plays
   * whoever speaks on it through the same element, and a track moving between tiles (its KID
   * sender changed) never plays twice. Each plays through the chosen speaker
   * (`state.speaker`, where the browser has `setSinkId`).
   */
  _renderAudio(state) {
    const sinks = state.remoteAudio ?? [];
    const speaker = state.speaker ?? '';
    for (const { id, track } of sinks) {
      let a = this.audios.get(id);
      if (!a) {
        a = { el: h('audio', { autoplay: true }), track: null, sink: '' };
        this.audios.set(id, a);
        this.audioBox.append(a.el);
      }
      if (a.sink !== speaker && typeof a.el.setSinkId === 'function') {
        a.sink = speaker;
        a.el.setSinkId(speaker).catch((err) => console.warn(`setSinkId: ${err.name}: ${err.message}`));
      }
      if (a.track !== track) {
        a.el.srcObject = new MediaStream([track]);
        a.track = track;
        a.el.play?.().catch(() => {});
      }
    }
    const live = new Set(sinks.map((s) => s.id));
    for (const [id, a] of this.audios) {
      if (!live.has(id)) {
        a.el.srcObject = null;
        a.el.remove();
        this.audios.delete(id);
      }
    }
  }

  /**
   * The stage: a remote screen share (the pinned participant's, else the first), else the
   * pinned participant's camera tile, else nothing. Returns `{screen, pinned}` (participants).
   */
  _renderStage(list, state, featured = null) {
    const presenter = presenterOf(list, state.pinned);
    const pinned = presenter ? null : (list.find((p) => p.device === state.pinned) ?? featured);
    if (presenter) {
      if (this.screen?.device !== presenter.device) {
        this.screen?.close();
        this.screen = new ScreenTile(presenter.device);
      }
      this.screen.update(presenter);
      setStage(this.stage, this.screen.el);
    } else {
      this.screen?.close();
      this.screen = null;
      if (pinned) {
        const t = this._tile(pinned);
        this._update(t, pinned, state);
        setStage(this.stage, t.el);
      } else {
        setStage(this.stage, null);
      }
    }
    this.root.classList.toggle('with-stage', !!(presenter || pinned));
    return { screen: presenter, pinned };
  }

  /** Renders `state`; returns the visible tile sizes (device -> {width, height}) for subscriptions. */
  render(state, now = performance.now()) {
    const list = tileParticipants(state);
    const self = state.self?.device ?? null;
    // Speaker view with a free stage: every tile keeps its place in the tile order (no swaps:
    // the speaker is on the stage), and the featured one leaves the filmstrip for the stage.
    let speakerOrder = null;
    let featured = null;
    if (this.view === 'speaker' && !presenterOf(list, state.pinned) && !list.some((p) => p.device === state.pinned)) {
      speakerOrder = this.order.arrange({ devices: list.map((p) => p.device), self, activeSpeaker: null, now });
      const d = featuredDevice({ ordered: speakerOrder, self, activeSpeaker: state.activeSpeaker, previous: this.featured });
      featured = list.find((p) => p.device === d) ?? null;
    }
    this.featured = featured?.device ?? null;
    this.root.classList.toggle('speaker-view', this.view === 'speaker');
    const { screen, pinned } = this._renderStage(list, state, featured);
    const rest = list.filter((p) => p !== pinned);
    const room = Math.max(1, this.visibleTiles - (screen || pinned ? 1 : 0));
    const overflow = rest.length > room;
    const visible = overflow ? room - 1 : rest.length;
    const byDevice = new Map(rest.map((p) => [p.device, p]));
    const ordered = (speakerOrder ? speakerOrder.filter((d) => byDevice.has(d)) : this.order.arrange({ devices: rest.map((p) => p.device), self, activeSpeaker: state.activeSpeaker, visible, now }))
      .map((d) => byDevice.get(d));
    const shown = ordered.slice(0, visible);
    const hidden = ordered.slice(visible);

    const seen = new Set(pinned ? [pinned.device] : []);
    const children = shown.map((p) => {
      const t = this._tile(p);
      this._update(t, p, state);
      seen.add(p.device);
      return t.el;
    });
    if (overflow) {
      const names = hidden.map((p) => p.name);
      const key = names.join('\n');
      if (this._moreKey !== key) {
        this._moreKey = key;
        this._more = h(
          'div',
          { class: 'tile more', role: 'group', title: names.join(', '), 'aria-label': `${hidden.length} more: ${names.join(', ')}` },
          h('div', { class: 'more-count' }, `+${hidden.length}`),
          h('div', { class: 'more-label' }, `${hidden.length} more`),
          h('div', { class: 'more-names' }, names.slice(0, 3).join(', ') + (hidden.length > 3 ? ', …' : '')),
        );
      }
      children.push(this._more);
    }
    const n = children.length;
    const cols = screen || pinned ? Math.min(n, 6) : n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
    this.grid.style.setProperty('--cols', String(Math.max(cols, 1)));
    this.grid.style.setProperty('--rows', String(Math.max(1, Math.ceil(n / Math.max(cols, 1)))));
    // Touch the DOM only when the tiles or their order changed: moving a node drops its focus.
    const current = [...this.grid.children];
    if (current.length !== n || current.some((el, i) => el !== children[i])) this.grid.replaceChildren(...children);
    for (const [device, t] of this.tiles) {
      if (!seen.has(device) && !state.participants.has(device)) {
        t.video.srcObject = null;
        this.tiles.delete(device);
      }
    }
    this._renderAudio(state);
    const sizes = new Map();
    for (const p of list) {
      const t = this.tiles.get(p.device);
      const inView = seen.has(p.device) && t?.el.isConnected;
      sizes.set(p.device, inView ? { width: t.el.clientWidth, height: t.el.clientHeight } : { width: 0, height: 0 });
    }
    // A share on the stage at the stage's size; another while the stage is taken (by a pin or an
    // earlier share) is hidden. A share not drawn yet while the stage is free gets no entry: the
    // call subscribes it at a stage's size, since its frames must arrive to name their sender.
    if (screen || pinned) for (const p of list) if (!p.self && p.screenOn && p !== screen) sizes.set(screenKey(p.device), { width: 0, height: 0 });
    if (screen) sizes.set(screenKey(screen.device), { width: this.screen.el.clientWidth, height: this.screen.el.clientHeight });
    return sizes;
  }
}
