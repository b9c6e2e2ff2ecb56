/**
 * The local camera and microphone, or what of them there is (`getUserMedia` with fallbacks).
 *
 * @module local-media
 */

/**
 * The camera and microphone, or what of them there is: a device without a camera joins with
 * its microphone, one without a microphone with its camera, one with neither (or refused both)
 * watches and listens; each case calls `note(kind, text)` with a sentence that says so. Never
 * rejects: the worst case is an empty `MediaStream`.
 */
export async function openLocalMedia(note) {
  const md = navigator.mediaDevices;
  const video = { width: 1280, height: 720, frameRate: 30 };
  const attempt = async (c) => {
    try {
      return { stream: await md.getUserMedia(c) };
    } catch (err) {
      console.warn(`getUserMedia(${Object.keys(c).join('+')}): ${err.name}: ${err.message}`);
      return { err };
    }
  };
  const both = await attempt({ audio: true, video });
  if (both.stream) return both.stream;
  const blocked = both.err?.name === 'NotAllowedError' || both.err?.name === 'SecurityError';
  const audio = await attempt({ audio: true });
  if (audio.stream) {
    note('no-camera', blocked
      ? 'Camera access is blocked, so you joined with audio only. Allow the camera in the browser\'s site settings and join again to be seen.'
      : 'No camera could be used, so you joined with audio only: the others hear you but do not see you.');
    return audio.stream;
  }
  const cam = await attempt({ video });
  if (cam.stream) {
    note('no-microphone', 'No microphone could be used: the others see you but cannot hear you.');
    return cam.stream;
  }
  note('no-devices', blocked
    ? 'Camera and microphone access is blocked: you can watch and listen, but the others cannot see or hear you. Allow them in the browser\'s site settings and join again.'
    : 'No camera or microphone could be used: you can watch and listen, but the others cannot see or hear you.');
  return new MediaStream();
}
