/**
 * The in-call screen: top bar (room, E2EE state, persistent "recorded" badge, security code,
 * overall quality), the connection status while the page reconnects (calm, with a Rejoin button
 * once the retries gave up), warnings (identity key changed, refused recorder or bundle), the grid, the
 * side panel (security, quality or chat) and the control bar (mic, camera, screen, panels with
 * the chat's unread count, devices, leave). The E2EE badge says what the frames do
 * (ui/e2ee-badge.js); a changed security code is a calm notice naming who joined or left.
 * "Bea joined" / "Bea left" notices, "You are the only one here" with a Copy link button, and
 * the presenter's "You are sharing your screen" bar (ui/notices.js, ui/stage.js).
 * Watch-only viewers get no publishing controls. Raise hand (with the queue of raised hands,
 * ui/hands.js), reactions (ui/reactions.js) and the grid / speaker view toggle (ui/view-mode.js,
 * remembered in `localStorage`).
 *
 * The call redraws several times a second: what holds focus is updated in place, and a focused
 * control that a redraw replaced anyway gets the focus back (`data-ctl` / `data-focus` keys).
 *
 * @module ui/call-view
 */
import { ChatPanel } from './chat-panel.js';
import { DeviceSettingsPanel } from './device-settings.js';
import { h, icon, replace } from './dom.js';
import { E2eeBadge } from './e2ee-badge.js';
import { Grid, qualityBars } from './grid.js';
import { renderModeratorBar, renderWaitingList } from './moderation.js';
import { QualityPanel } from './quality.js';
import { codeGroups, VerificationPanel } from './verification.js';
import { recordedLabel } from '../recording-policy.js';
import { AloneCard, announced, inviteLink, PresenceLog, PresenceNotices } from './notices.js';
import { SharingBar } from './stage.js';
import { handButton, renderHandQueue } from './hands.js';
import { ReactionPicker } from './reactions.js';
import { ViewMode } from './view-mode.js';

/** What the top bar says while this device's media waits for the recorder (strict recording). */
export const RECORDING_HOLD_TEXT = 'Waiting for the recorder — this call is recorded; your microphone and camera start when it is ready';

/** Draws a call; `actions` are the Call's operations (see app.js). */
export class CallView {
  constructor(root, actions, options = {}) {
    this.root = root;
    this.actions = actions;
    this.panel = options.panel ?? null; // 'security' | 'quality' | 'chat' | 'devices' | null
    this.dismissed = new Set();
    this.topbar = h('header', { class: 'topbar' });
    this.warnings = h('div', { class: 'warnings', role: 'alert' });
    this.notices = h('div', { class: 'notices', role: 'status' });
    this.connection = h('div', { class: 'connection-status', role: 'status', 'aria-live': 'polite' });
    /** Moderators' top-bar controls (kept across top-bar redraws) and the lobby's waiting list. */
    this.moderatorBar = h('span', { class: 'moderator-bar' });
    this.waitingList = h('div', { class: 'waiting-list', role: 'region', 'aria-label': 'Waiting to join' });
    this.handQueue = h('div', { class: 'hand-queue', role: 'region', 'aria-label': 'Raised hands' });
    this.reactionPicker = new ReactionPicker((emoji) => actions.react?.(emoji));
    this.viewMode = new ViewMode({ storage: options.storage });
    this.gridRoot = h('main', { class: 'stage-area' });
    this.side = h('aside', { class: 'side' });
    this.controls = h('footer', { class: 'controls', 'aria-label': 'Call controls' });
    this.grid = new Grid(this.gridRoot, { pin: (d) => actions.pin(d), moderate: (a, d) => actions.moderate?.(a, d) }, { visibleTiles: options.visibleTiles });
    this.grid.view = this.viewMode.view;
    this.securityPanel = new VerificationPanel(h('div', { class: 'panel security-panel', role: 'region', 'aria-label': 'Security' }), actions);
    this.qualityPanel = new QualityPanel(h('div', { class: 'panel quality-panel', role: 'region', 'aria-label': 'Call quality' }));
    this.devicesPanel = new DeviceSettingsPanel(h('div', { class: 'panel devices-panel', role: 'region', 'aria-label': 'Devices' }), actions);
    this.e2eeBadge = new E2eeBadge(h('span', { class: 'badge e2ee' }));
    this.chatPanel = new ChatPanel(h('div', { class: 'panel chat-panel', role: 'region', 'aria-label': 'Chat' }), {
      sendChat: (text) => actions.sendChat(text),
      closeChat: () => {
        if (this.panel === 'chat') this.togglePanel('chat', this._state);
      },
    });
    this.presence = new PresenceLog();
    this.presenceNotices = new PresenceNotices();
    this.alone = new AloneCard({ link: (room) => inviteLink(globalThis.location, room), copy: options.copy });
    this.sharingBar = new SharingBar(() => actions.setScreen(false));
    this.body = h('div', { class: 'call-body' }, this.gridRoot, this.side);
    this._buildTopbar();
    root.replaceChildren(
      h('div', { class: 'call' }, this.topbar, this.connection, this.warnings, this.notices, this.waitingList, this.handQueue, this.presenceNotices.root, this.sharingBar.root, this.alone.root, this.body, this.controls),
    );
  }

  /** Opens a side panel (or closes it when already open). */
  togglePanel(name, state) {
    this.panel = this.panel === name ? null : name;
    this.actions.setChatOpen?.(this.panel === 'chat');
    this.render(state);
    if (this.panel === 'chat') this.chatPanel.focus();
    else if (this.panel === 'devices') this.devicesPanel.focus();
    else if (name === 'chat') this.controls.querySelector('[data-ctl="chat"]')?.focus();
  }

  /** Shows the grid or the speaker view (and remembers the choice). */
  setView(view) {
    this.viewMode.set(view);
    this.grid.view = this.viewMode.view;
    if (this._state) this.render(this._state);
    this.actions.redraw?.();
  }

  /** Renders `state`; returns the visible tile sizes. */
  render(state) {
    const focused = focusKey(this.root);
    const sizes = this._render(state);
    if (focused && !this.root.contains(document.activeElement)) refocus(this.root, focused);
    return sizes;
  }

  _render(state) {
    this._state = state;
    this._topbar(state);
    this._presence(state);
    this.e2eeBadge.render(state.e2ee?.status);
    this._connection(state);
    this._warnings(state);
    this._notices(state);
    renderWaitingList(this.waitingList, state.moderation, (a, d) => this.actions.moderate?.(a, d));
    renderHandQueue(this.handQueue, {
      hands: state.hands,
      self: state.self?.device ?? null,
      moderator: !!state.moderation?.moderator,
      name: (d) => state.participants.get(d)?.name ?? d,
      lower: (d) => this.actions.moderate?.('lower_hand', d),
    });
    this._controls(state);
    this.body.classList.toggle('with-side', !!this.panel);
    if (this.panel === 'security') {
      this.securityPanel.render(state);
      // Re-attaching it on every redraw would reset its scroll and lose clicks in flight.
      if (this.securityPanel.root.parentNode !== this.side) this.side.replaceChildren(this.securityPanel.root);
    } else if (this.panel === 'quality') {
      this.qualityPanel.render(state);
      this.side.replaceChildren(this.qualityPanel.root);
    } else if (this.panel === 'devices') {
      this.devicesPanel.render(state);
      if (this.devicesPanel.root.parentNode !== this.side) this.side.replaceChildren(this.devicesPanel.root);
    } else if (this.panel === 'chat') {
      this.chatPanel.render(state);
      if (this.chatPanel.root.parentNode !== this.side) this.side.replaceChildren(this.chatPanel.root);
    } else {
      this.side.replaceChildren();
    }
    return this.grid.render(state);
  }

  /** Join/leave notices, the alone card and the sharing bar. */
  _presence(state) {
    const now = performance.now();
    this.presenceNotices.render(this.presence.observe(state.participants, now, state.hands?.queue));
    // Expired reactions leave the board before the grid draws it.
    state.reactions?.live(now);
    clearTimeout(this._presenceTimer);
    const next = [this.presence.nextExpiry(), state.reactions?.nextExpiry() ?? null].filter((t) => t !== null).reduce((a, b) => Math.min(a, b), Infinity);
    if (next !== Infinity) this._presenceTimer = setTimeout(() => this.render(this._state), Math.max(0, next - now) + 20);
    const others = [...state.participants.values()].some(announced);
    this.alone.render(state.phase === 'in-call' && !!state.self?.canPublish && !others, state.room);
    this.sharingBar.render(!!state.local?.screenOn);
  }

  /** The top bar's parts, built once: its buttons keep their focus across redraws. */
  _buildTopbar() {
    this.roomName = h('span', { class: 'room-name' });
    this.countText = h('span', {});
    this.count = h('span', { class: 'count', title: 'Participants' }, icon('users'), this.countText);
    this.recordedSlot = h('span', { class: 'slot-recorded' });
    this.viewerSlot = h('span', { class: 'slot-viewer' });
    this.holdSlot = h('span', { class: 'slot-recording-hold' });
    this.codeText = h('span', { class: 'code-text' });
    this.codeChip = h('button', { class: 'code-chip', dataset: { focus: 'code-chip' }, title: 'Call security code: compare it with the others', onclick: () => this.togglePanel('security', this._state) }, icon('shield'), this.codeText);
    this.qualityChip = h('button', { class: 'quality-chip', dataset: { focus: 'quality-chip' }, title: 'Call quality', onclick: () => this.togglePanel('quality', this._state) });
    replace(this.topbar, h('div', { class: 'room' }, this.roomName, this.count), this.e2eeBadge.root, this.recordedSlot, this.holdSlot, this.viewerSlot, this.moderatorBar, h('span', { class: 'spacer' }), this.codeChip, this.qualityChip);
  }

  _topbar(state) {
    // Moderators' controls keep their own change key (ui/moderation.js).
    renderModeratorBar(this.moderatorBar, state.moderation, (a, d) => this.actions.moderate?.(a, d));
    const count = [...state.participants.values()].filter((p) => p.role !== 'recorder').length;
    const watching = state.self && !state.self.canPublish;
    const code = codeGroups(state.securityCode).slice(0, 5).join(' ') || '…';
    const level = state.quality?.level ?? 'unknown';
    const key = JSON.stringify([state.room, count, state.recorded, !!state.recordingHold, watching, code, level]);
    if (key === this._topbarKey) return;
    this._topbarKey = key;
    this.roomName.textContent = state.room ?? '';
    this.countText.textContent = String(count);
    this.count.setAttribute('aria-label', `${count} ${count === 1 ? 'participant' : 'participants'}`);
    replace(
      this.recordedSlot,
      state.recorded
        ? h('span', { class: `badge recorded ${state.recorded.verified ? '' : 'unverified'}`, title: state.recorded.verified ? 'A recorder named in the room’s signed policy receives the keys' : 'Recording policy not verified: the recorder gets no keys' }, icon('rec', 'rec-dot'), state.recorded.verified ? recordedLabel(state.recorded.retentionDays) : 'Recorded')
        : null,
    );
    replace(
      this.holdSlot,
      state.recordingHold
        ? h('span', { class: 'badge recording-hold', title: 'Strict recording: nothing of yours is sent until the recorder receives it' }, icon('rec', 'rec-dot'), RECORDING_HOLD_TEXT)
        : null,
    );
    replace(this.viewerSlot, watching ? h('span', { class: 'badge viewer' }, icon('eye'), 'Watching') : null);
    this.codeText.textContent = code;
    this.codeChip.setAttribute('aria-label', `Call security code ${code}: open the security panel`);
    replace(this.qualityChip, qualityBars(state.quality));
    this.qualityChip.setAttribute('aria-label', `Call quality: ${level}`);
  }

  _warnings(state) {
    const shown = state.warnings.filter((w) => !this.dismissed.has(w));
    const key = shown.map((w) => `${w.kind}\u0000${w.text}`).join('\n');
    if (key === this._warningsKey && this._warningsShown?.every((w, i) => w === shown[i])) return;
    this._warningsKey = key;
    this._warningsShown = shown;
    replace(
      this.warnings,
      shown.map((w) =>
        h(
          'div',
          { class: `warning ${w.kind}` },
          icon('warn'),
          h('span', {}, w.text),
          w.kind === 'key-changed' ? h('button', { class: 'link', onclick: () => { this.panel = 'security'; this.render(state); } }, 'Review') : null,
          h('button', { class: 'close', 'aria-label': 'Dismiss', onclick: () => { this.dismissed.add(w); this.render(state); } }, '×'),
        ),
      ),
    );
  }

  /**
   * The signaling connection (`state.connection`): nothing while connected; "Reconnecting…"
   * (a calm note, not a warning) while the page rejoins; a sentence and a Rejoin button once the
   * retries gave up.
   */
  _connection(state) {
    const c = state.connection ?? { status: 'connected' };
    const key = `${state.phase}:${c.status}:${c.offline}`;
    if (key === this._connectionKey) return;
    this._connectionKey = key;
    if (state.phase !== 'reconnecting') {
      replace(this.connection);
      return;
    }
    if (c.status === 'failed') {
      replace(
        this.connection,
        h(
          'div',
          { class: 'connection-lost' },
          icon('warn'),
          h('span', {}, 'The connection to the call server could not be restored. Check your network, then rejoin.'),
          h('button', { class: 'primary', onclick: () => this.actions.rejoin?.() }, 'Rejoin'),
        ),
      );
      return;
    }
    const text = c.offline ? 'Reconnecting… (waiting for the network)' : 'Reconnecting…';
    replace(this.connection, h('div', { class: 'reconnecting' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, text)));
  }

  /** Notes that are not problems (joined without a camera, ...): calm, dismissable. */
  _notices(state) {
    const shown = (state.notices ?? []).filter((n) => !this.dismissed.has(n));
    const key = shown.map((n) => n.text).join('\n');
    if (key === this._noticesKey) return;
    this._noticesKey = key;
    const glyph = { 'no-camera': 'cameraOff', 'no-microphone': 'micOff', 'security-code': 'shield' };
    replace(
      this.notices,
      shown.map((n) =>
        h(
          'div',
          { class: `notice ${n.kind}` },
          icon(glyph[n.kind] ?? 'eye'),
          h('span', {}, n.text),
          h('button', { class: 'close', 'aria-label': 'Dismiss', onclick: () => { this.dismissed.add(n); this.render(state); } }, '×'),
        ),
      ),
    );
  }

  /** The chat button, with the unread count as a badge (and in its accessible name). */
  _chatButton(state, unread, btn) {
    const b = btn('chat', this.panel === 'chat', 'Chat', 'chat', 'chat', () => this.togglePanel('chat', state), 'panel-btn');
    if (unread > 0) {
      b.append(h('span', { class: 'unread-badge', 'aria-hidden': 'true' }, unread > 99 ? '99+' : String(unread)));
      b.setAttribute('aria-label', `Chat, ${unread} unread`);
    }
    return b;
  }

  _controls(state) {
    const l = state.local;
    const publish = !!state.self?.canPublish;
    // Redraw the buttons only when what they show changes: the call redraws several times a
    // second, and a button replaced between a press and its release loses the click.
    const unread = state.chat?.unread ?? 0;
    const hands = state.hands;
    const key = JSON.stringify([publish, l.micOn, l.cameraOn, l.screenOn, l.hasMic, l.hasCamera, this.panel, unread, !!state.chat, !!hands?.mine, hands?.queue.length ?? null, this.viewMode.view]);
    if (key === this._controlsKey && this.controls.childElementCount) return;
    this._controlsKey = key;
    const btn = (name, on, label, onIcon, offIcon, onclick, extra = '') =>
      // The label is also the accessible name: on narrow screens the text is hidden, icon only.
      h('button', { class: `ctl ${on ? 'on' : 'off'} ${extra}`, 'aria-pressed': String(on), title: label, 'aria-label': label, dataset: { ctl: name }, onclick }, icon(on ? onIcon : offIcon), h('span', {}, label));
    // A device the call could not use (no camera, no microphone): its button is off for good.
    const missing = (el, gone, why) => {
      if (gone) {
        el.disabled = true;
        el.title = why;
      }
      return el;
    };
    replace(
      this.controls,
      publish ? missing(btn('mic', l.micOn, l.micOn ? 'Mute' : 'Unmute', 'mic', 'micOff', () => this.actions.setMic(!l.micOn)), l.hasMic === false, 'No microphone') : null,
      publish ? missing(btn('camera', l.cameraOn, l.cameraOn ? 'Stop video' : 'Start video', 'camera', 'cameraOff', () => this.actions.setCamera(!l.cameraOn)), l.hasCamera === false, 'No camera') : null,
      publish ? btn('screen', l.screenOn, l.screenOn ? 'Stop sharing' : 'Share screen', 'screen', 'screen', () => this.actions.setScreen(!l.screenOn), l.screenOn ? 'sharing' : 'neutral') : null,
      hands ? handButton(hands, () => this.actions.setHand?.(!hands.mine)) : null,
      publish && state.chat ? this.reactionPicker.root : null,
      h('span', { class: 'ctl-gap' }),
      btn('view', this.viewMode.view === 'speaker', 'Speaker view', 'speaker', 'users', () => this.setView(this.viewMode.view === 'speaker' ? 'grid' : 'speaker'), 'panel-btn'),
      btn('security', this.panel === 'security', 'Security', 'shield', 'shield', () => this.togglePanel('security', state), 'panel-btn'),
      btn('quality', this.panel === 'quality', 'Quality', 'chart', 'chart', () => this.togglePanel('quality', state), 'panel-btn'),
      btn('devices', this.panel === 'devices', 'Devices', 'gear', 'gear', () => this.togglePanel('devices', state), 'panel-btn'),
      state.chat ? this._chatButton(state, unread, btn) : null,
      h('span', { class: 'ctl-gap' }),
      h('button', { class: 'ctl leave', title: 'Leave', 'aria-label': 'Leave', dataset: { ctl: 'leave' }, onclick: () => this.actions.leave() }, icon('leave'), h('span', {}, 'Leave')),
    );
  }
}

/**
 * What identifies the focused control inside `root` across redraws, or null: its `data-ctl` or
 * `data-focus`, else its accessible name, else its tag and text within its participant
 * (`data-device`) for panels that redraw their rows.
 */
function focusKey(root) {
  const el = document.activeElement;
  if (!el || el === document.body || !root.contains(el)) return null;
  if (el.dataset?.ctl) return { selector: `[data-ctl="${CSS.escape(el.dataset.ctl)}"]` };
  if (el.dataset?.focus) return { selector: `[data-focus="${CSS.escape(el.dataset.focus)}"]` };
  const label = el.getAttribute('aria-label');
  if (label) return { selector: `[aria-label="${CSS.escape(label)}"]` };
  const row = el.closest('[data-device]');
  const scope = row ? `${row.tagName}${row.classList[0] ? `.${CSS.escape(row.classList[0])}` : ''}[data-device="${CSS.escape(row.dataset.device)}"]` : null;
  return { tag: el.tagName, text: el.textContent, scope };
}

/** Focuses the control that `key` names again, when the redraw replaced it. */
function refocus(root, key) {
  if (key.selector) return root.querySelector(key.selector)?.focus();
  const scope = key.scope ? root.querySelector(key.scope) : root;
  const same = [...(scope ?? root).querySelectorAll(key.tag)].find((el) => el.textContent === key.text);
  same?.focus();
}
