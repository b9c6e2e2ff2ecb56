/**
 * The top bar's encryption badge: what `state.e2ee.status` (e2ee-status.js) says, green only
 * when frames from every sender open ("End-to-end encrypted"), calm while keys are on their
 * way ("Waiting for keys"), a warning naming who when a sender's frames fail to decrypt. One
 * element for the call's life, redrawn only when the words change: it is a live region, and a
 * screen reader hears it change.
 *
 * @module ui/e2ee-badge
 */
import { icon, replace } from './dom.js';

/** Before the worker's first report: nothing is known to open yet. */
const UNKNOWN = { state: 'waiting', text: 'Waiting for keys', detail: 'Keys are being exchanged.' };

/** The badge; `root` goes in the top bar. */
export class E2eeBadge {
  constructor(root) {
    this.root = root;
    root.setAttribute('role', 'status');
    root.setAttribute('aria-live', 'polite');
    this._key = null;
  }

  /** Shows `status` (null: not known yet). */
  render(status) {
    const s = status ?? UNKNOWN;
    const key = `${s.state}\n${s.text}`;
    if (key === this._key) return;
    this._key = key;
    this.root.className = `badge e2ee ${s.state}`;
    this.root.dataset.state = s.state;
    this.root.title = s.detail;
    replace(this.root, icon(s.state === 'failing' ? 'warn' : 'lock'), s.text);
  }
}
