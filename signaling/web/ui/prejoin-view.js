/**
 * The pre-join screen (prejoin.js holds its state): camera preview (or why there is none), a
 * live microphone level, camera / microphone / speaker pickers, "join with camera off" and
 * "join with microphone off", your name, Join and Back. Built once and updated in place, so
 * keyboard focus stays where it is; every control is a native, labelled form control.
 *
 * @module ui/prejoin-view
 */
import { captureFailureText, speakerSelectionSupported } from '../devices.js';
import { devicePicker, updatePicker } from './device-pickers.js';
import { h, icon, replace } from './dom.js';
import { initials } from './grid.js';

/** What the preview says when there is no camera picture, by why (devices.js `captureFailure`). */
const CAMERA_GONE = {
  missing: 'No camera found: you will join with audio only.',
  blocked: 'The camera is blocked for this site.',
  busy: 'The camera is in use by another application.',
  other: 'The camera could not be started: you will join with audio only.',
};

/** Draws `prejoin` into `root`; `onJoin({name})` on Join, `onBack()` on Back. */
export class PreJoinView {
  constructor(root, prejoin, { room, name = '', onJoin, onBack }) {
    this.prejoin = prejoin;
    this.video = h('video', { class: 'preview-video', autoplay: true, playsinline: true, 'aria-label': 'Your camera preview' });
    this.video.muted = true;
    this.placeholder = h('div', { class: 'avatar preview-placeholder', style: { '--hue': 215 } });
    this.previewNote = h('div', { class: 'preview-note', role: 'status' });
    this.levelBar = h('span', { class: 'level-bar' });
    this.level = h('div', { class: 'level', role: 'meter', 'aria-label': 'Microphone level', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, this.levelBar);
    this.levelRow = h('div', { class: 'level-row' }, icon('mic'), this.level);
    this.messages = h('div', { class: 'prejoin-messages', role: 'alert' });
    this.camera = devicePicker({ name: 'camera', label: 'Camera', glyph: 'camera', onpick: (id) => prejoin.choose('camera', id) });
    this.microphone = devicePicker({ name: 'microphone', label: 'Microphone', glyph: 'mic', onpick: (id) => prejoin.choose('microphone', id) });
    this.speaker = speakerSelectionSupported()
      ? devicePicker({ name: 'speaker', label: 'Speaker', glyph: 'speaker', onpick: (id) => prejoin.choose('speaker', id) })
      : null;
    this.cameraOff = h('input', { type: 'checkbox', name: 'camera-off', onchange: () => prejoin.setCameraOff(this.cameraOff.checked) });
    this.micOff = h('input', { type: 'checkbox', name: 'mic-off', onchange: () => prejoin.setMicOff(this.micOff.checked) });
    this.name = h('input', { name: 'name', value: name, placeholder: 'Your name', autocomplete: 'name', oninput: () => this.update() });
    this.join = h('button', { class: 'primary big', type: 'submit', dataset: { action: 'join' } }, 'Join now');
    this.retry = h('button', { class: 'secondary', type: 'button', hidden: true, onclick: () => prejoin.start() }, 'Try again');
    const form = h(
      'form',
      {
        class: 'prejoin-card',
        'aria-labelledby': 'prejoin-title',
        onsubmit: (e) => {
          e.preventDefault();
          if (this.prejoin.state.phase === 'ready') onJoin({ name: this.name.value.trim() });
        },
      },
      h('div', { class: 'prejoin-preview' }, this.video, this.placeholder, this.previewNote),
      h(
        'div',
        { class: 'prejoin-side' },
        h('h1', { class: 'brand', id: 'prejoin-title' }, icon('lock'), h('span', {}, 'Ready to join?')),
        h('p', { class: 'lede' }, 'Room ', h('strong', {}, room), '. Check how you look and sound; nothing is sent until you join.'),
        this.levelRow,
        this.messages,
        this.retry,
        this.camera.root,
        this.microphone.root,
        this.speaker?.root,
        h('label', { class: 'check' }, this.cameraOff, 'Join with camera off'),
        h('label', { class: 'check' }, this.micOff, 'Join with microphone off'),
        h('label', { class: 'field' }, 'Your name', this.name),
        this.join,
        h('button', { class: 'link back', type: 'button', onclick: () => onBack() }, 'Back to the lobby'),
      ),
    );
    replace(root, h('div', { class: 'lobby prejoin' }, form));
    this._onChange = () => this.update();
    prejoin.addEventListener('change', this._onChange);
    this._frame = requestAnimationFrame(() => this._tick());
    this.update();
  }

  /** Redraws from the pre-join state. */
  update() {
    const p = this.prejoin;
    const s = p.state;
    const cam = p.camera;
    const mic = p.microphone;
    if (this.video.srcObject !== p.stream) this.video.srcObject = p.stream;
    const showVideo = !!cam && !s.cameraOff;
    this.video.hidden = !showVideo;
    replace(this.placeholder, showVideo ? null : h('span', {}, initials(this.name.value || 'You')));
    this.placeholder.hidden = showVideo;
    let note = '';
    if (s.phase === 'opening') note = 'Asking for your camera and microphone…';
    else if (!cam) note = CAMERA_GONE[s.failed.video] ?? CAMERA_GONE.missing;
    else if (s.cameraOff) note = 'Camera is off: the others see your initials.';
    replace(this.previewNote, note);
    this.previewNote.hidden = !note;

    const failed = s.failed ?? {};
    const lines = [];
    if (failed.audio && failed.video && failed.audio === failed.video) lines.push(captureFailureText(failed.audio, 'both'));
    else {
      if (failed.video && failed.video !== 'missing') lines.push(captureFailureText(failed.video, 'video'));
      if (failed.audio) lines.push(captureFailureText(failed.audio, 'audio'));
    }
    if (s.phase === 'ready' && !cam && !mic) lines.push('You can still join to watch and listen; the others will not see or hear you.');
    replace(this.messages, lines.map((t) => h('p', { class: 'prejoin-message' }, icon('warn'), h('span', {}, t))));
    this.messages.hidden = !lines.length;
    this.retry.hidden = !Object.values(failed).some((w) => w === 'blocked' || w === 'busy');

    updatePicker(this.camera, s.devices.cameras, s.camera, 'No camera found');
    updatePicker(this.microphone, s.devices.microphones, s.microphone, 'No microphone found');
    if (this.speaker) updatePicker(this.speaker, s.devices.speakers, s.speaker, 'Default output');
    this.cameraOff.checked = s.cameraOff || !cam;
    this.cameraOff.disabled = !cam;
    this.micOff.checked = s.micOff || !mic;
    this.micOff.disabled = !mic;
    this.levelRow.hidden = !mic;
    this.join.disabled = s.phase !== 'ready';
    this.join.textContent = s.phase === 'ready' && !cam && !mic ? 'Join to watch and listen' : 'Join now';
  }

  _tick() {
    const v = this.prejoin.level();
    this.levelBar.style.width = `${Math.round(v * 100)}%`;
    // The accessible value moves in steps of 10 at most 4 times a second (not every frame).
    const now = performance.now();
    if (!(now - (this._announced ?? 0) < 250)) {
      this._announced = now;
      this.level.setAttribute('aria-valuenow', String(Math.round(v * 10) * 10));
    }
    this.level.dataset.peak = String(Math.max(Number(this.level.dataset.peak ?? 0), v));
    this._frame = requestAnimationFrame(() => this._tick());
  }

  /** Stops drawing (the call screen or the lobby replaces this one). */
  close() {
    cancelAnimationFrame(this._frame);
    this.prejoin.removeEventListener('change', this._onChange);
  }
}
