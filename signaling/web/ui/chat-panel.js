/**
 * The chat side panel: the message list (sender names from the roster, join and leave notices,
 * unreadable messages marked as such), and a message box with a send button. Everything is
 * reachable from the keyboard: the panel's button in the control bar, Enter sends, Escape
 * closes the panel. The list is an ARIA live log, so screen readers announce new messages.
 *
 * @module ui/chat-panel
 */
import { h, icon, replace } from './dom.js';
import { MAX_CHAT_PLAINTEXT_BYTES } from '../e2ee/chat.mjs';

function time(at) {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Draws `state.chat`; `actions.sendChat(text)` sends, `actions.closeChat()` closes. */
export class ChatPanel {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.list = h('ol', { class: 'chat-list', role: 'log', 'aria-live': 'polite', 'aria-label': 'Chat messages' });
    this.input = h('input', { class: 'chat-input', type: 'text', 'aria-label': 'Message', placeholder: 'Message everyone', autocomplete: 'off', maxlength: String(Math.floor(MAX_CHAT_PLAINTEXT_BYTES / 4)) });
    this.error = h('div', { class: 'chat-error', role: 'alert' });
    const form = h(
      'form',
      {
        class: 'chat-form',
        onsubmit: (e) => {
          e.preventDefault();
          this._send();
        },
      },
      this.input,
      h('button', { class: 'primary chat-send', type: 'submit', 'aria-label': 'Send message' }, 'Send'),
    );
    replace(
      root,
      h('div', { class: 'panel-head' }, h('h2', {}, icon('chat'), 'Chat'), h('button', { class: 'close', 'aria-label': 'Close chat', onclick: () => actions.closeChat() }, '×')),
      h('p', { class: 'hint' }, icon('lock'), 'Messages are encrypted end to end: the servers relay them without being able to read them.'),
      this.list,
      this.error,
      form,
      (this.readOnly = h('p', { class: 'hint chat-read-only', hidden: true }, 'Only presenters can write here; you can read along.')),
    );
    this.form = form;
    root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') actions.closeChat();
    });
    this._drawn = 0;
  }

  async _send() {
    const text = this.input.value;
    if (!text.trim()) return;
    try {
      await this.actions.sendChat(text);
      this.input.value = '';
      replace(this.error);
    } catch (err) {
      replace(this.error, `Not sent: ${err.message}`);
    }
  }

  /** Appends the messages not drawn yet. */
  render(state) {
    // Only devices that may publish hold a sender key to seal with (broadcast viewers read).
    const canWrite = !!state.self?.canPublish;
    this.form.hidden = !canWrite;
    this.readOnly.hidden = canWrite;
    const messages = state.chat?.messages ?? [];
    if (messages.length < this._drawn) {
      this.list.replaceChildren();
      this._drawn = 0;
    }
    for (const m of messages.slice(this._drawn)) {
      if (m.kind === 'notice') {
        this.list.append(h('li', { class: 'chat-notice' }, h('span', {}, m.text), h('time', {}, time(m.at))));
      } else {
        this.list.append(
          h(
            'li',
            { class: `chat-message ${m.self ? 'self' : ''} ${m.kind === 'unreadable' ? 'unreadable' : ''}`, dataset: { from: m.from } },
            h('div', { class: 'chat-meta' }, h('span', { class: 'chat-name' }, m.name), h('time', {}, time(m.at))),
            h('div', { class: 'chat-text' }, m.kind === 'unreadable' ? icon('warn') : null, m.text),
          ),
        );
      }
    }
    if (messages.length !== this._drawn) this.list.scrollTop = this.list.scrollHeight;
    this._drawn = messages.length;
  }

  /** Puts the keyboard focus in the message box. */
  focus() {
    this.input.focus();
  }
}
