/**
 * The in-call devices panel: switch the camera or microphone (the call replaces the track on its
 * sender, no renegotiation) and, where the browser can (`setSinkId`), the speaker. Lists are
 * read when the panel opens and when the browser says devices changed.
 *
 * `actions`: `listDevices()` → `{cameras, microphones, speakers}`, `currentDevices()` →
 * `{camera, microphone, speaker}` ids, `useDevice('audio' | 'video', id)` (a promise),
 * `setSpeaker(id)`.
 *
 * @module ui/device-settings
 */
import { h, icon, replace } from './dom.js';
import { devicePicker, updatePicker } from './device-pickers.js';

export class DeviceSettingsPanel {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    this.devices = null;
    // Empty (and no banner) until a switch fails.
    this.error = h('div', { role: 'alert' });
    this.camera = devicePicker({ name: 'camera', label: 'Camera', glyph: 'camera', onpick: (id) => this._use('video', id) });
    this.microphone = devicePicker({ name: 'microphone', label: 'Microphone', glyph: 'mic', onpick: (id) => this._use('audio', id) });
    this.speaker = devicePicker({ name: 'speaker', label: 'Speaker', glyph: 'speaker', onpick: (id) => actions.setSpeaker(id) });
    replace(
      root,
      h('h2', {}, icon('gear'), 'Devices'),
      this.camera.root,
      this.microphone.root,
      this.speaker.root,
      h('p', { class: 'hint' }, 'A new camera or microphone takes over at once; the call goes on.'),
      this.error,
    );
    navigator.mediaDevices?.addEventListener?.('devicechange', () => this._load());
  }

  /** Focuses the first picker (the panel was opened from the keyboard or a click). */
  focus() {
    this.root.querySelector('select:not(:disabled)')?.focus();
  }

  async _load() {
    this.devices = await this.actions.listDevices();
    this.loaded = true;
    if (this._state) this.render(this._state);
  }

  async _use(kind, id) {
    this.error.className = '';
    replace(this.error);
    try {
      await this.actions.useDevice(kind, id);
    } catch (err) {
      this.error.className = 'form-error';
      replace(this.error, icon('warn'), `That ${kind === 'video' ? 'camera' : 'microphone'} could not be started (${err.name ?? 'error'}): the previous one stays on.`);
    }
    if (this._state) this.render(this._state);
  }

  /** Draws the pickers (the first draw starts reading the device lists). */
  render(state) {
    this._state = state;
    if (!this.devices) {
      this.devices = { cameras: [], microphones: [], speakers: [] };
      this._load();
    }
    const now = this.actions.currentDevices();
    const l = state.local ?? {};
    const publish = !!state.self?.canPublish;
    // A viewer sends nothing; a call that started without a camera (or microphone) has no
    // sender to give a new one.
    // Until the first list arrives the pickers say so, not "none found".
    const why = (has, kind) =>
      !publish ? 'Watching: nothing is sent' : has === false ? `Joined without a ${kind}` : this.loaded ? `No ${kind} found` : 'Looking for devices…';
    updatePicker(this.camera, publish && l.hasCamera !== false ? this.devices.cameras : [], now.camera, why(l.hasCamera, 'camera'));
    updatePicker(this.microphone, publish && l.hasMic !== false ? this.devices.microphones : [], now.microphone, why(l.hasMic, 'microphone'));
    updatePicker(this.speaker, this.devices.speakers, now.speaker, 'This browser plays through its default output');
  }
}
