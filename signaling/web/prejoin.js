/**
 * The pre-join step (what the page does between the lobby and the call): opens the camera and
 * microphone for a preview, lists the devices to pick from, keeps the choices ("join with
 * camera off / microphone off", which devices), and hands the stream to the call on Join. The
 * screen is ui/prejoin-view.js; `change` fires after every update of `state`.
 *
 * A missing camera is not an error: the preview says so and the call joins with audio only. A
 * blocked device says what to do (and the page can still join without it).
 *
 * @module prejoin
 */
import { deviceIdOf, LevelMeter, listDevices, openDevices, openTrack, captureFailure } from './devices.js';

/** The devices and choices of the pre-join screen. */
export class PreJoin extends EventTarget {
  constructor() {
    super();
    this.stream = null;
    this.meter = null;
    this.state = {
      /** `opening` (asking for the devices), `ready`. */
      phase: 'opening',
      devices: { cameras: [], microphones: [], speakers: [] },
      camera: null,
      microphone: null,
      speaker: null,
      cameraOff: false,
      micOff: false,
      /** Why a kind could not be opened: `{audio?, video?}` with `blocked`, `missing`, `busy`, `other`. */
      failed: {},
    };
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }

  get camera() {
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  get microphone() {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  /** Opens the devices (the chosen ones, else the defaults) and reads the lists. */
  async start() {
    const s = this.state;
    s.phase = 'opening';
    this._changed();
    this._release();
    const { stream, failed } = await openDevices({ microphone: s.microphone, camera: s.camera });
    this.stream = stream;
    s.failed = failed;
    this._applyToggles();
    this._meter();
    await this._relist();
    s.phase = 'ready';
    this._changed();
  }

  /** Re-reads the device lists and what is open (labels appear once a capture was allowed). */
  async _relist() {
    const s = this.state;
    s.devices = await listDevices();
    s.camera = deviceIdOf(this.camera) ?? s.camera;
    s.microphone = deviceIdOf(this.microphone) ?? s.microphone;
    if (s.speaker && !s.devices.speakers.some((d) => d.id === s.speaker)) s.speaker = null;
  }

  /** Picks device `id` for `kind` (`camera`, `microphone`, `speaker`). */
  async choose(kind, id) {
    const s = this.state;
    if (kind === 'speaker') {
      s.speaker = id || null;
      this._changed();
      return;
    }
    const media = kind === 'camera' ? 'video' : 'audio';
    let track;
    try {
      track = await openTrack(media, id);
    } catch (err) {
      console.warn(`getUserMedia(${media}): ${err.name}: ${err.message}`);
      s.failed = { ...s.failed, [media]: captureFailure(err) };
      this._changed();
      return;
    }
    const old = kind === 'camera' ? this.camera : this.microphone;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    this.stream.addTrack(track);
    s.failed = { ...s.failed, [media]: undefined };
    s[kind] = deviceIdOf(track) ?? id;
    this._applyToggles();
    if (kind === 'microphone') this._meter();
    this._changed();
  }

  /** "Join with camera off": the track stays open (the call can turn it on), disabled. */
  setCameraOff(off) {
    this.state.cameraOff = !!off;
    this._applyToggles();
    this._changed();
  }

  /** "Join with microphone off": muted (the track stays open, disabled). */
  setMicOff(off) {
    this.state.micOff = !!off;
    this._applyToggles();
    this._changed();
  }

  _applyToggles() {
    if (this.camera) this.camera.enabled = !this.state.cameraOff;
    if (this.microphone) this.microphone.enabled = !this.state.micOff;
  }

  _meter() {
    this.meter?.close();
    this.meter = null;
    const mic = this.microphone;
    if (!mic) return;
    try {
      this.meter = new LevelMeter(mic);
    } catch (err) {
      // No Web Audio: the screen shows no level, the microphone still works.
      console.warn(`level meter: ${err.name}: ${err.message}`);
    }
  }

  /** The microphone level now, 0–1 (0 while muted or without a microphone). */
  level() {
    if (!this.meter || this.state.micOff) return 0;
    return this.meter.read();
  }

  /**
   * Join: what the call gets, `{localStream, speaker}`. The stream's tracks are the call's from
   * now on (it stops them when it ends); this object lets go of them.
   */
  take() {
    this.meter?.close();
    this.meter = null;
    const localStream = this.stream ?? new MediaStream();
    this.stream = null;
    return { localStream, speaker: this.state.speaker };
  }

  _release() {
    this.meter?.close();
    this.meter = null;
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
  }

  /** Back to the lobby: the devices are closed. */
  close() {
    this._release();
  }
}
