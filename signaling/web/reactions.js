/**
 * Reactions (👍 👏 😂 😮 ❤️ 🎉), without the DOM: what a reaction is on the wire, how often a
 * page may send one, and which are on screen now.
 *
 * A reaction travels end to end encrypted as a `chat` (docs/e2ee.md §6): sealed under the
 * sender's current sender key like any chat message, so the service relays ciphertext only.
 * Its plaintext is the byte 0x01 (a "kind" byte a typed message never starts with: the page
 * strips control characters from the start of what it sends) and the emoji in UTF-8. A reaction
 * is shown for `SHOW_MS` on the sender's tile and never kept by the room.
 *
 * @module reactions
 */

/** The reactions a page offers and accepts, with their accessible names. */
export const REACTIONS = [
  { emoji: '👍', name: 'thumbs up' },
  { emoji: '👏', name: 'clapping' },
  { emoji: '😂', name: 'laughing' },
  { emoji: '😮', name: 'surprised' },
  { emoji: '❤️', name: 'heart' },
  { emoji: '🎉', name: 'party' },
];

/** The first character of a reaction's plaintext. */
export const REACTION_KIND = '\u0001';

/** How long a reaction floats on its tile. */
export const SHOW_MS = 4000;

/**
 * Reactions a page sends at most per `WINDOW_MS` (and so at most 3 per second). 3 per 1.5 s is
 * 2 per second sustained, the service's own `chat` allowance: a page never runs into it.
 */
export const MAX_PER_WINDOW = 3;
/** The sending window. */
export const WINDOW_MS = 1500;

/** Whether `emoji` is one of {@link REACTIONS}. */
export function isReaction(emoji) {
  return REACTIONS.some((r) => r.emoji === emoji);
}

/** The plaintext of a reaction (sealed as a chat message). */
export function reactionPlaintext(emoji) {
  if (!isReaction(emoji)) throw new Error(`not a reaction: ${emoji}`);
  return REACTION_KIND + emoji;
}

/**
 * What an opened chat plaintext is: `{kind: 'text', text}`, `{kind: 'reaction', emoji}`, or
 * `{kind: 'unknown'}` (a reaction this page does not offer, or another kind: dropped).
 */
export function classifyPlaintext(text) {
  if (!text.startsWith(REACTION_KIND)) return { kind: 'text', text };
  const emoji = text.slice(REACTION_KIND.length);
  return isReaction(emoji) ? { kind: 'reaction', emoji } : { kind: 'unknown' };
}

/** The bound on this page's own reactions (sans-IO, time passed in). */
export class ReactionLimiter {
  constructor({ max = MAX_PER_WINDOW, windowMs = WINDOW_MS } = {}) {
    this.max = max;
    this.windowMs = windowMs;
    this.sent = [];
  }

  /** Whether one more reaction may go at `now` (and counts it when it may). */
  admit(now) {
    this.sent = this.sent.filter((t) => now - t < this.windowMs);
    if (this.sent.length >= this.max) return false;
    this.sent.push(now);
    return true;
  }
}

/** The reactions on screen (sans-IO, time passed in): `{id, device, emoji, at}`. */
export class ReactionBoard {
  constructor({ showMs = SHOW_MS, perDevice = 5 } = {}) {
    this.showMs = showMs;
    this.perDevice = perDevice;
    this.seq = 0;
    this.entries = [];
  }

  /** `device` reacted with `emoji` at `now`. */
  add(device, emoji, now) {
    this.entries.push({ id: ++this.seq, device, emoji, at: now });
    const mine = this.entries.filter((e) => e.device === device);
    if (mine.length > this.perDevice) {
      const drop = new Set(mine.slice(0, mine.length - this.perDevice));
      this.entries = this.entries.filter((e) => !drop.has(e));
    }
  }

  /** The reactions still shown at `now`. */
  live(now) {
    this.entries = this.entries.filter((e) => now - e.at < this.showMs);
    return this.entries;
  }

  /** When the next one goes (ms), or null. */
  nextExpiry() {
    return this.entries.length ? Math.min(...this.entries.map((e) => e.at + this.showMs)) : null;
  }

  /** A device left: its reactions go. */
  forget(device) {
    this.entries = this.entries.filter((e) => e.device !== device);
  }
}
