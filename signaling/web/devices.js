/**
 * Cameras, microphones and speakers: the lists the pickers show, a stream opened on the chosen
 * devices (what of them there is), the words for a capture that failed, and a microphone level
 * meter. Used by the pre-join screen (prejoin.js) and by the in-call settings (Call.useDevice).
 *
 * @module devices
 */

/** The camera constraints of a call (docs/architecture.md §2.1: 720p30, simulcast below). */
export const CAMERA_CONSTRAINTS = { width: 1280, height: 720, frameRate: 30 };

/** True when this browser can route audio to a chosen output (`HTMLMediaElement.setSinkId`). */
export function speakerSelectionSupported() {
  return typeof HTMLMediaElement !== 'undefined' && typeof HTMLMediaElement.prototype.setSinkId === 'function';
}

/**
 * The devices the pickers offer: `{cameras, microphones, speakers}`, each `[{id, label}]`. Labels
 * are empty until the page has been allowed a capture once; a device without one is named by
 * its kind and position ("Camera 2").
 */
export async function listDevices(md = navigator.mediaDevices) {
  let all = [];
  try {
    all = await md.enumerateDevices();
  } catch (err) {
    console.warn(`enumerateDevices: ${err.name}: ${err.message}`);
  }
  const of = (kind, word) =>
    all
      .filter((d) => d.kind === kind && d.deviceId)
      .map((d, i) => ({ id: d.deviceId, label: d.label || `${word} ${i + 1}` }));
  return {
    cameras: of('videoinput', 'Camera'),
    microphones: of('audioinput', 'Microphone'),
    speakers: speakerSelectionSupported() ? of('audiooutput', 'Speaker') : [],
  };
}

/** `getUserMedia` constraints for `kind` ('audio' | 'video') on device `id` (null: the default). */
export function deviceConstraints(kind, id) {
  const base = kind === 'video' ? { ...CAMERA_CONSTRAINTS } : {};
  if (id) base.deviceId = { exact: id };
  return Object.keys(base).length ? base : true;
}

/** Why a capture failed, as one of `blocked`, `missing`, `busy`, `other`. */
export function captureFailure(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'blocked';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'missing';
    case 'NotReadableError':
    case 'AbortError':
      return 'busy';
    default:
      return 'other';
  }
}

/** What the pre-join screen says when a capture failed, per {@link captureFailure} and device kind. */
export function captureFailureText(why, kind) {
  const what = kind === 'video' ? 'camera' : kind === 'audio' ? 'microphone' : 'camera and microphone';
  switch (why) {
    case 'blocked':
      return `This site may not use your ${what}. To allow it, click the camera or lock icon at the left of the address bar, set ${kind === 'audio' ? 'Microphone' : kind === 'video' ? 'Camera' : 'Camera and Microphone'} to Allow, then press Try again. You can also join without it.`;
    case 'missing':
      return kind === 'video' ? 'No camera found: you will join with audio only.' : `No ${what} found.`;
    case 'busy':
      return `Your ${what} is in use by another application or could not be started. Close the other application, then press Try again.`;
    default:
      return `Your ${what} could not be started.`;
  }
}

/**
 * Opens the microphone and the camera on the chosen devices (null ids: the defaults): both in
 * one request (one permission prompt), else each on its own, so that a missing or blocked
 * camera still leaves the microphone (and the other way round). Never rejects: resolves with
 * `{stream, failed: {audio?, video?}}`, `failed` naming why a kind is missing (see
 * {@link captureFailure}). A device id that no longer exists falls back to the default device
 * of its kind.
 */
export async function openDevices({ microphone = null, camera = null } = {}, md = navigator.mediaDevices) {
  try {
    const both = await md.getUserMedia({ audio: deviceConstraints('audio', microphone), video: deviceConstraints('video', camera) });
    return { stream: both, failed: {} };
  } catch (err) {
    console.warn(`getUserMedia(audio+video): ${err.name}: ${err.message}`);
  }
  const stream = new MediaStream();
  const failed = {};
  const open = async (kind, id) => {
    try {
      const s = await md.getUserMedia({ [kind]: deviceConstraints(kind, id) });
      return s.getTracks()[0] ?? null;
    } catch (err) {
      console.warn(`getUserMedia(${kind}): ${err.name}: ${err.message}`);
      if (id && captureFailure(err) === 'missing') return open(kind, null);
      failed[kind] = captureFailure(err);
      return null;
    }
  };
  const mic = await open('audio', microphone);
  const cam = await open('video', camera);
  if (mic) stream.addTrack(mic);
  if (cam) stream.addTrack(cam);
  return { stream, failed };
}

/** A fresh track of `kind` ('audio' | 'video') on device `id`; rejects with the browser's error. */
export async function openTrack(kind, id, md = navigator.mediaDevices) {
  const s = await md.getUserMedia({ [kind]: deviceConstraints(kind, id) });
  const track = s.getTracks()[0];
  if (!track) throw new DOMException(`no ${kind} track`, 'NotFoundError');
  return track;
}

/** The device id a track was opened on (null when the browser does not say). */
export function deviceIdOf(track) {
  return track?.getSettings?.().deviceId ?? null;
}

/**
 * A live level of a microphone track, 0–1 (RMS of the last 2048 samples, scaled so speech at a
 * normal distance reads about half). `read()` samples it; `close()` frees the audio graph.
 */
export class LevelMeter {
  constructor(track) {
    this.context = new AudioContext();
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 2048;
    this.source.connect(this.analyser);
    this.samples = new Float32Array(this.analyser.fftSize);
    // Started without a user gesture, the context waits for one (autoplay policy).
    if (this.context.state === 'suspended') {
      const resume = () => this.context.resume().catch(() => {});
      addEventListener('pointerdown', resume, { once: true });
      addEventListener('keydown', resume, { once: true });
      resume();
    }
  }

  /** The current level, 0–1. */
  read() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const x of this.samples) sum += x * x;
    const rms = Math.sqrt(sum / this.samples.length);
    return Math.min(1, rms * 4);
  }

  close() {
    this.source.disconnect();
    this.context.close().catch(() => {});
  }
}
