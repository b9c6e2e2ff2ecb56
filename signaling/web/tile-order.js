/**
 * The order of the participant tiles (sans-IO, time passed in): stable, so tiles do not jump
 * while the speaker changes. This device first, then the others in the order they joined
 * (first seen); a participant who leaves frees their place, a newcomer goes last. When the
 * active speaker's tile is off-screen (beyond the visible tiles, in "+N more"), it swaps places
 * with the last visible tile, at most once per `moveIntervalMs`: the rest of the order never
 * moves, and a tile already in view never moves at all.
 *
 * @module tile-order
 */

/**
 * The key under which the UI reports a screen-share tile's size (a camera tile's key is its
 * device): the call subscribes the screen track at that size.
 */
export function screenKey(device) {
  return `${device}#screen`;
}

/** The shortest time between two moves of the active speaker into view. */
export const MOVE_INTERVAL_MS = 3000;

/** Keeps the tile order of one call view. */
export class TileOrder {
  constructor({ moveIntervalMs = MOVE_INTERVAL_MS } = {}) {
    this.moveIntervalMs = moveIntervalMs;
    /** Remote devices in tile order (self is not kept here: it is always first). */
    this.order = [];
    this.lastMove = -Infinity;
    /** Moves made so far (the tests count them). */
    this.moves = 0;
  }

  /**
   * The devices in tile order. `devices`: the devices that get a tile, in roster order (the order
   * newcomers are appended in); `self`: this device (or null); `activeSpeaker`: a device or null;
   * `visible`: how many tiles are on screen; `now`: milliseconds.
   */
  arrange({ devices, self = null, activeSpeaker = null, visible = Infinity, now }) {
    const present = new Set(devices);
    this.order = this.order.filter((d) => present.has(d));
    const known = new Set(this.order);
    for (const d of devices) {
      if (d !== self && !known.has(d)) {
        this.order.push(d);
        known.add(d);
      }
    }
    const lead = self !== null && present.has(self) ? 1 : 0;
    const slots = Math.max(0, visible - lead); // visible places for the others
    const at = this.order.indexOf(activeSpeaker);
    if (at >= slots && slots > 0 && now - this.lastMove >= this.moveIntervalMs) {
      const out = slots - 1;
      [this.order[out], this.order[at]] = [this.order[at], this.order[out]];
      this.lastMove = now;
      this.moves += 1;
    }
    return lead ? [self, ...this.order] : [...this.order];
  }
}
