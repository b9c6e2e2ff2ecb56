/**
 * The in-call screen: top bar (room, E2EE state, persistent "recorded" badge, security code,
 * overall quality), the connection status while the page reconnects (calm, with a Rejoin button
 * once the retries gave up), warnings (identity key changed, refused recorder or bundle), the grid, the
 * side panel (security, quality or chat) and the control bar (mic, camera, screen, panels with
 * the chat's unread count, leave).
 * Watch-only viewers get no publishing controls.
 *
 * @module ui/call-view
 */
import { ChatPanel } from './chat-panel.js';
import { h, icon, replace } from './dom.js';
import { Grid, qualityBars } from './grid.js';
import { QualityPanel } from './quality.js';
import { codeGroups, VerificationPanel } from './verification.js';
import { recordedLabel } from '../recording-policy.js';

/** What the top bar says while this device's media waits for the recorder (strict recording). */
export const RECORDING_HOLD_TEXT = 'Waiting for the recorder — this call is recorded; your microphone and camera start when it is ready';

/** Draws a call; `actions` are the Call's operations (see app.js). */
export class CallView {
  constructor(root, actions, options = {}) {
    this.root = root;
    this.actions = actions;
    this.panel = options.panel ?? null; // 'security' | 'quality' | 'chat' | null
    this.dismissed = new Set();
    this.topbar = h('header', { class: 'topbar' });
    this.warnings = h('div', { class: 'warnings', role: 'alert' });
    this.notices = h('div', { class: 'notices', role: 'status' });
    this.connection = h('div', { class: 'connection-status', role: 'status', 'aria-live': 'polite' });
    this.gridRoot = h('main', { class: 'stage-area' });
    this.side = h('aside', { class: 'side' });
    this.controls = h('footer', { class: 'controls' });
    this.body = h('div', { class: 'call-body' }, this.gridRoot, this.side);
    root.replaceChildren(h('div', { class: 'call' }, this.topbar, this.connection, this.warnings, this.notices, this.body, this.controls));
    this.grid = new Grid(this.gridRoot, { pin: (d) => actions.pin(d) }, { visibleTiles: options.visibleTiles });
    this.securityPanel = new VerificationPanel(h('div', { class: 'panel security-panel' }), actions);
    this.qualityPanel = new QualityPanel(h('div', { class: 'panel quality-panel' }));
    this.chatPanel = new ChatPanel(h('div', { class: 'panel chat-panel', role: 'region', 'aria-label': 'Chat' }), {
      sendChat: (text) => actions.sendChat(text),
      closeChat: () => {
        if (this.panel === 'chat') this.togglePanel('chat', this._state);
      },
    });
  }

  /** Opens a side panel (or closes it when already open). */
  togglePanel(name, state) {
    this.panel = this.panel === name ? null : name;
    this.actions.setChatOpen?.(this.panel === 'chat');
    this.render(state);
    if (this.panel === 'chat') this.chatPanel.focus();
    else if (name === 'chat') this.controls.querySelector('[data-ctl="chat"]')?.focus();
  }

  /** Renders `state`; returns the visible tile sizes. */
  render(state) {
    this._state = state;
    this._topbar(state);
    this._connection(state);
    this._warnings(state);
    this._notices(state);
    this._controls(state);
    this.body.classList.toggle('with-side', !!this.panel);
    if (this.panel === 'security') {
      this.securityPanel.render(state);
      this.side.replaceChildren(this.securityPanel.root);
    } else if (this.panel === 'quality') {
      this.qualityPanel.render(state);
      this.side.replaceChildren(this.qualityPanel.root);
    } else if (this.panel === 'chat') {
      this.chatPanel.render(state);
      if (this.chatPanel.root.parentNode !== this.side) this.side.replaceChildren(this.chatPanel.root);
    } else {
      this.side.replaceChildren();
    }
    return this.grid.render(state);
  }

  _topbar(state) {
    const count = [...state.participants.values()].filter((p) => p.role !== 'recorder').length;
    const watching = state.self && !state.self.canPublish;
    replace(
      this.topbar,
      h('div', { class: 'room' }, h('span', { class: 'room-name' }, state.room ?? ''), h('span', { class: 'count', title: 'Participants' }, icon('users'), String(count))),
      h('span', { class: 'badge e2ee', title: 'Media is encrypted on each device; the servers cannot read it' }, icon('lock'), 'End-to-end encrypted'),
      state.recorded
        ? h('span', { class: `badge recorded ${state.recorded.verified ? '' : 'unverified'}`, title: state.recorded.verified ? 'A recorder named in the room’s signed policy receives the keys' : 'Recording policy not verified: the recorder gets no keys' }, icon('rec', 'rec-dot'), state.recorded.verified ? recordedLabel(state.recorded.retentionDays) : 'Recorded')
        : null,
      state.recordingHold
        ? h('span', { class: 'badge recording-hold', title: 'Strict recording: nothing of yours is sent until the recorder receives it' }, icon('rec', 'rec-dot'), RECORDING_HOLD_TEXT)
        : null,
      watching ? h('span', { class: 'badge viewer' }, icon('eye'), 'Watching') : null,
      h('span', { class: 'spacer' }),
      h(
        'button',
        { class: 'code-chip', title: 'Call security code: compare it with the others', onclick: () => this.togglePanel('security', state) },
        icon('shield'),
        codeGroups(state.securityCode).slice(0, 5).join(' ') || '…',
      ),
      h('button', { class: 'quality-chip', title: 'Call quality', onclick: () => this.togglePanel('quality', state) }, qualityBars(state.quality)),
    );
  }

  _warnings(state) {
    const shown = state.warnings.filter((w) => !this.dismissed.has(w));
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
    const glyph = { 'no-camera': 'cameraOff', 'no-microphone': 'micOff' };
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
    const key = JSON.stringify([publish, l.micOn, l.cameraOn, l.screenOn, l.hasMic, l.hasCamera, this.panel, unread, !!state.chat]);
    if (key === this._controlsKey && this.controls.childElementCount) return;
    this._controlsKey = key;
    const btn = (name, on, label, onIcon, offIcon, onclick, extra = '') =>
      h('button', { class: `ctl ${on ? 'on' : 'off'} ${extra}`, 'aria-pressed': String(on), title: label, dataset: { ctl: name }, onclick }, icon(on ? onIcon : offIcon), h('span', {}, label));
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
      h('span', { class: 'ctl-gap' }),
      btn('security', this.panel === 'security', 'Security', 'shield', 'shield', () => this.togglePanel('security', state), 'panel-btn'),
      btn('quality', this.panel === 'quality', 'Quality', 'chart', 'chart', () => this.togglePanel('quality', state), 'panel-btn'),
      state.chat ? this._chatButton(state, unread, btn) : null,
      h('span', { class: 'ctl-gap' }),
      h('button', { class: 'ctl leave', title: 'Leave', dataset: { ctl: 'leave' }, onclick: () => this.actions.leave() }, icon('leave'), h('span', {}, 'Leave')),
    );
  }
}
