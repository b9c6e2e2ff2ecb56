/**
 * End-to-end encrypted chat (docs/e2ee.md §6, docs/protocol.md `chat`): the messages, join and
 * leave notices and the unread count the chat panel draws (`chat.state`).
 *
 * A message is sealed under this device's current sender key (the key manager's `current`); a
 * received one is opened with the sender's key of its generation, ratcheted forward from the
 * step held (at most 16 steps, as for frames). A message whose key has not arrived yet waits
 * for it; one that still cannot be opened after a while is listed as unreadable, never as text.
 * A reaction (reactions.js) travels the same way, its plaintext marked by a kind byte: it is
 * handed to `onReaction`, never listed.
 *
 * @module chat
 */
import { openChat, sealChat } from './e2ee/chat.mjs';
import { ratchetBaseKey } from './e2ee/sframe.mjs';
import { classifyPlaintext, ReactionLimiter, reactionPlaintext } from './reactions.js';

/** Steps a received key is ratcheted forward at most (docs/e2ee.md §1.3). */
const MAX_LOOK_AHEAD = 16;
/** How long a message waits for its sender's key before it is listed as unreadable. */
const KEY_WAIT_MS = 5000;
/** Messages kept in the list. */
const MAX_MESSAGES = 500;

/** The chat of one call. */
export class ChatRoom {
  /**
   * @param {object} o
   * @param {string} o.room
   * @param {string} o.call
   * @param {{device: string, slot: number}} o.self
   * @param {(device: string) => ({name: string, slot: number} | undefined)} o.participant
   * @param {() => ({generation: number, step: number, baseKey: Uint8Array} | null)} o.senderKey
   * @param {(m: object) => void} o.send
   * @param {() => void} o.changed
   * @param {(device: string, emoji: string) => void} [o.onReaction] a reaction was sent or received
   */
  constructor(o) {
    this.o = o;
    /** device -> generation -> [{step, baseKey, suite}] */
    this._keys = new Map();
    this._waiting = [];
    this._reactionLimiter = new ReactionLimiter();
    /** What the panel draws. */
    this.state = { messages: [], unread: 0, open: false };
  }

  _push(entry) {
    this.state.messages.push({ at: Date.now(), ...entry });
    if (this.state.messages.length > MAX_MESSAGES) this.state.messages.splice(0, this.state.messages.length - MAX_MESSAGES);
    if (!this.state.open && entry.kind === 'message' && !entry.self) this.state.unread += 1;
    this.o.changed();
  }

  /** A join or leave notice ("Carol joined"). */
  notice(text) {
    this._push({ kind: 'notice', text });
  }

  /** Opens or closes the panel; opening marks everything read. */
  setOpen(open) {
    this.state.open = open;
    if (open) this.state.unread = 0;
    this.o.changed();
  }

  /** A receiver key from the key manager (`onReceiverKey`). */
  addKey(k) {
    let gens = this._keys.get(k.device);
    if (!gens) this._keys.set(k.device, (gens = new Map()));
    const list = gens.get(k.generation) ?? [];
    list.push({ step: k.step, baseKey: k.baseKey, suite: k.suite });
    gens.set(k.generation, list.sort((a, b) => a.step - b.step).slice(-4));
    // Keep the three newest generations, as the media receiver does.
    for (const g of [...gens.keys()].sort((a, b) => a - b).slice(0, -3)) gens.delete(g);
    const retry = this._waiting.filter((w) => w.from === k.device);
    this._waiting = this._waiting.filter((w) => w.from !== k.device);
    return Promise.all(retry.map((w) => this.receive(w.m, w.since)));
  }

  /** Forgets a departed device's keys. */
  removeDevice(device) {
    this._keys.delete(device);
  }

  /** The sender's key of (generation, step), ratcheted from the nearest step held below. */
  async _keyFor(device, generation, step) {
    const held = (this._keys.get(device)?.get(generation) ?? []).filter((k) => k.step <= step && step - k.step <= MAX_LOOK_AHEAD);
    const from = held[held.length - 1];
    if (!from) return null;
    let key = from.baseKey;
    for (let s = from.step; s < step; s++) key = await ratchetBaseKey(from.suite, key);
    return key;
  }

  /**
   * Seals `text` under this device's current sender key and sends it; lists it as sent. Control
   * characters at its start go (a plaintext starting with one is not a typed message).
   */
  async send(text) {
    const body = String(text).replace(/^[\u0000-\u001f\s]+/, '').trim();
    if (!body) return false;
    await this._seal(body);
    this._push({ kind: 'message', from: this.o.self.device, name: 'You', text: body, self: true });
    return true;
  }

  /**
   * Sends a reaction (one of reactions.js `REACTIONS`), sealed like a message; false, sending
   * nothing, beyond the page's reaction allowance (`ReactionLimiter`).
   */
  async react(emoji, now = performance.now()) {
    const plaintext = reactionPlaintext(emoji);
    if (!this._reactionLimiter.admit(now)) return false;
    await this._seal(plaintext);
    this.o.onReaction?.(this.o.self.device, emoji);
    return true;
  }

  async _seal(plaintext) {
    const current = this.o.senderKey();
    if (!current) throw new Error('no sending key yet');
    const ctx = { room: this.o.room, call: this.o.call, sender: this.o.self.device, slot: this.o.self.slot };
    const sealed = await sealChat(current.baseKey, ctx, { generation: current.generation, step: current.step }, plaintext);
    this.o.send({ type: 'chat', chat: sealed });
  }

  /** A server `chat` message: opened and listed (or kept until its key arrives). */
  async receive(m, since = Date.now()) {
    const p = this.o.participant(m.from);
    const name = p?.name ?? m.from;
    const key = p ? await this._keyFor(m.from, m.chat?.generation, m.chat?.step) : null;
    if (!key) {
      if (Date.now() - since < KEY_WAIT_MS) {
        this._waiting.push({ from: m.from, m, since });
        setTimeout(() => this._expire(m), KEY_WAIT_MS);
      } else {
        this._push({ kind: 'unreadable', from: m.from, name, text: 'A message that could not be decrypted (no key for it)' });
      }
      return;
    }
    try {
      const ctx = { room: this.o.room, call: this.o.call, sender: m.from, slot: p.slot };
      const opened = classifyPlaintext(new TextDecoder('utf-8', { fatal: true }).decode(await openChat(key, ctx, m.chat)));
      if (opened.kind === 'reaction') this.o.onReaction?.(m.from, opened.emoji);
      else if (opened.kind === 'text') this._push({ kind: 'message', from: m.from, name, text: opened.text, self: false });
      else console.warn(`chat from ${m.from}: a kind this page does not know; dropped`);
    } catch (err) {
      console.warn(`chat from ${m.from}: ${err.code ?? err.message}`);
      this._push({ kind: 'unreadable', from: m.from, name, text: 'A message that could not be decrypted' });
    }
  }

  _expire(m) {
    const w = this._waiting.find((x) => x.m === m);
    if (!w) return;
    this._waiting = this._waiting.filter((x) => x !== w);
    this.receive(w.m, 0);
  }
}
