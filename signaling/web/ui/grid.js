/**
 * The participant grid: one tile per visible participant (video, or initials when the camera is
 * off or missing; name; muted-microphone, camera-off and verified marks with accessible labels;
 * a compact quality indicator), the active speaker highlighted, a pinned (or
 * screen-sharing) participant on a large stage, and a "+N more" tile beyond last-N.
 *
 * Tiles are kept per device and reused, so a video element is attached to its track once.
 *
 * @module ui/grid
 */
import { h, icon, replace } from './dom.js';
import { tileMenu } from './moderation.js';

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
 * Order of tiles: pinned first, then whoever shares a screen, the active speaker, this device
 * (always in view), then the others by speaking level and name.
 */
export function orderParticipants(state) {
  // Recorders and broadcast viewers (they publish nothing; a presenter may have hundreds) have
  // no tile; the top bar counts them. A watch-only viewer does not see itself.
  const list = [...state.participants.values()].filter((p) => p.role !== 'recorder' && !(p.role === 'viewer' && !p.self) && !(p.self && state.self && !state.self.canPublish));
  const score = (p) =>
    (state.pinned === p.device ? 1000 : 0) +
    (p.screenTrack ? 500 : 0) +
    (state.activeSpeaker === p.device ? 100 : 0) +
    (p.speaking ?? 0) * 10 +
    (p.self ? 50 : 0);
  return list.sort((a, b) => score(b) - score(a) || String(a.name).localeCompare(String(b.name)));
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
      const pin = h('button', { class: 'pin', title: 'Pin', 'aria-label': 'Pin', onclick: () => this.actions.pin?.(p.device) }, icon('pin'));
      const menu = h('div', { class: 'tile-menu-slot' });
      const el = h(
        'div',
        { class: 'tile', dataset: { device: p.device } },
        avatar, video,
        h('div', { class: 'label' }, marks, name),
        quality, pin, menu,
      );
      t = { el, video, avatar, name, marks, quality, pin, menu, moderated: false, track: null };
      this.tiles.set(p.device, t);
    }
    return t;
  }

  _update(t, p, state, big) {
    const track = (big && p.screenTrack) || p.screenTrack || p.videoTrack || null;
    // A remote camera turned off (its `media_state`) still has a track, sending black: initials.
    const cameraOff = p.self ? !state.local.cameraOn : !!p.videoOff;
    const showVideo = !!track && track.readyState !== 'ended' && (!cameraOff || track === p.screenTrack);
    if (t.track !== track) {
      t.video.srcObject = track ? new MediaStream([track]) : null;
      t.track = track;
      if (track) t.video.play?.().catch(() => {});
    }
    t.el.classList.toggle('has-video', showVideo);
    t.el.classList.toggle('speaking', state.activeSpeaker === p.device && (p.speaking ?? 0) > 0.05);
    t.el.classList.toggle('active', state.activeSpeaker === p.device);
    t.el.classList.toggle('pinned', state.pinned === p.device);
    t.el.classList.toggle('self', !!p.self);
    t.el.classList.toggle('screen', !!(p.screenTrack && track === p.screenTrack));
    t.el.classList.toggle('key-changed', !!p.keyChanged);
    replace(t.avatar, h('span', {}, initials(p.name)));
    t.avatar.setAttribute('role', 'img');
    t.avatar.setAttribute('aria-label', cameraOff ? `${p.name}: camera off` : p.name);
    replace(t.name, p.self ? `${p.name} (you)` : p.name, p.role === 'presenter' ? h('em', { class: 'role' }, 'presenter') : null);
    const micOff = p.self ? !state.local.micOn : p.audioMuted;
    replace(
      t.marks,
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
    replace(t.quality, qualityBars(q, { title }), q?.decryptFailures ? h('span', { class: 'fail-count', title: 'Frames that failed to decrypt' }, icon('lock'), String(q.decryptFailures)) : null);
    t.pin.classList.toggle('on', state.pinned === p.device);
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
   * sender changed) never plays twice.
   */
  _renderAudio(state) {
    const sinks = state.remoteAudio ?? [];
    for (const { id, track } of sinks) {
      let a = this.audios.get(id);
      if (!a) {
        a = { el: h('audio', { autoplay: true }), track: null };
        this.audios.set(id, a);
        this.audioBox.append(a.el);
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

  /** Renders `state`; returns the visible tile sizes (device -> {width, height}) for subscriptions. */
  render(state) {
    const ordered = orderParticipants(state);
    const staged = ordered.find((p) => state.pinned === p.device) ?? ordered.find((p) => p.screenTrack && !p.self) ?? null;
    const rest = ordered.filter((p) => p !== staged);
    const room = Math.max(1, this.visibleTiles - (staged ? 1 : 0));
    const overflow = rest.length > room ? rest.length - (room - 1) : 0;
    const shown = overflow ? rest.slice(0, room - 1) : rest;
    const hidden = overflow ? rest.slice(room - 1) : [];

    const seen = new Set();
    if (staged) {
      const t = this._tile(staged);
      this._update(t, staged, state, true);
      if (t.el.parentNode !== this.stage) this.stage.replaceChildren(t.el);
      seen.add(staged.device);
    } else {
      this.stage.replaceChildren();
    }
    this.root.classList.toggle('with-stage', !!staged);
    const children = shown.map((p) => {
      const t = this._tile(p);
      this._update(t, p, state, false);
      seen.add(p.device);
      return t.el;
    });
    if (overflow) {
      children.push(
        h(
          'div',
          { class: 'tile more', title: hidden.map((p) => p.name).join(', ') },
          h('div', { class: 'more-count' }, `+${hidden.length}`),
          h('div', { class: 'more-label' }, `${hidden.length} more`),
          h('div', { class: 'more-names' }, hidden.slice(0, 3).map((p) => p.name).join(', ') + (hidden.length > 3 ? ', …' : '')),
        ),
      );
    }
    const n = children.length;
    const cols = staged ? Math.min(n, 6) : n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
    this.grid.style.setProperty('--cols', String(Math.max(cols, 1)));
    this.grid.style.setProperty('--rows', String(Math.max(1, Math.ceil(n / Math.max(cols, 1)))));
    this.grid.replaceChildren(...children);
    for (const [device, t] of this.tiles) {
      if (!seen.has(device) && !state.participants.has(device)) {
        t.video.srcObject = null;
        this.tiles.delete(device);
      }
    }
    this._renderAudio(state);
    const sizes = new Map();
    for (const p of ordered) {
      const t = this.tiles.get(p.device);
      const visible = seen.has(p.device) && t?.el.isConnected;
      sizes.set(p.device, visible ? { width: t.el.clientWidth, height: t.el.clientHeight } : { width: 0, height: 0 });
    }
    return sizes;
  }
}
