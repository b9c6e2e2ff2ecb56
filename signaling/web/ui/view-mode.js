/**
 * Grid view or speaker view, and who is large in speaker view.
 *
 * `ViewMode` holds the choice, kept across redraws (the call view owns one) and across visits
 * (`localStorage`, key `STORAGE_KEY`; a page without storage keeps it for the call only).
 * `featuredDevice` says whose camera tile takes the stage in speaker view when no screen share
 * or pinned tile holds it: the active speaker, else whoever was featured before (so the stage
 * does not jump back when the room goes quiet), else the first other tile in tile order. The
 * others stay in the filmstrip in their tile order (tile-order.js), which never changes for the
 * view.
 *
 * @module ui/view-mode
 */

/** Where the choice is kept. */
export const STORAGE_KEY = 'e2ee-call.view';

/** The two views. */
export const VIEWS = ['grid', 'speaker'];

/** The view this page shows, remembered in `storage`. */
export class ViewMode {
  /** @param {{storage?: Storage | null}} [o] */
  constructor({ storage = globalThis.localStorage ?? null } = {}) {
    this.storage = storage;
    let saved = null;
    try {
      saved = storage?.getItem(STORAGE_KEY) ?? null;
    } catch (err) {
      // Storage refused (a sandboxed frame, privacy settings): the default view.
      console.warn(`view mode: ${err.name}`);
    }
    /** 'grid' | 'speaker' */
    this.view = VIEWS.includes(saved) ? saved : 'grid';
  }

  /** Switches to `view` and remembers it. */
  set(view) {
    if (!VIEWS.includes(view)) throw new Error(`unknown view ${view}`);
    this.view = view;
    try {
      this.storage?.setItem(STORAGE_KEY, view);
    } catch (err) {
      console.warn(`view mode: ${err.name}`);
    }
  }

  /** Grid to speaker, speaker to grid. */
  toggle() {
    this.set(this.view === 'grid' ? 'speaker' : 'grid');
  }
}

/**
 * The device featured on the stage in speaker view: `activeSpeaker` when it has a tile and is
 * not this device, else `previous` while it still has one, else the first other device of
 * `ordered` (tile order), else null (nobody else here: the grid as it is).
 */
export function featuredDevice({ ordered, self, activeSpeaker, previous }) {
  const others = ordered.filter((d) => d !== self);
  if (activeSpeaker && others.includes(activeSpeaker)) return activeSpeaker;
  if (previous && others.includes(previous)) return previous;
  return others[0] ?? null;
}
