/**
 * Init scripts the browser tests add to a page (`openDevice(..., { init })`): they run in the
 * page before its own code, so they are plain functions with no closure over this module.
 */

/**
 * Collects the text of every error banner the page ever shows into `window.__banners`
 * (warnings, form errors, the lost-connection screen), even one drawn and removed between two
 * looks of a test.
 */
export const WATCH_BANNERS = () => {
  window.__banners = [];
  const seen = new WeakSet();
  const scan = () => {
    for (const el of document.querySelectorAll('.warning, .form-error, .connection-lost')) {
      if (seen.has(el)) continue;
      seen.add(el);
      window.__banners.push(el.textContent.trim());
    }
  };
  new MutationObserver(scan).observe(document, { childList: true, subtree: true });
};

/**
 * A browser without a camera. Chromium's fake devices always include a camera, so this script
 * takes it away: video requests fail as Chromium fails them with no device, and the device
 * list has no `videoinput`.
 */
export const NO_CAMERA = () => {
  const md = navigator.mediaDevices;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => (c?.video ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError')) : gum(c));
  const enumerate = md.enumerateDevices.bind(md);
  md.enumerateDevices = async () => (await enumerate()).filter((d) => d.kind !== 'videoinput');
};

/**
 * A camera and a microphone a test can tell apart from every other page's: the camera is a
 * 640×360 canvas filled with `[r, g, b]` (a small white square runs along its top edge, so the
 * encoder always has a new frame), the microphone a 440 Hz tone that is silent until the test
 * calls `window.__speak(true)` (and silent again after `window.__speak(false)`): the SFU's
 * speaker detection (RFC 6464 levels) then sees exactly the page the test makes speak. Use as
 * `init: \`(${PAINTED_MEDIA})(${JSON.stringify(rgb)})\``.
 */
export const PAINTED_MEDIA = (rgb) => {
  const [r, g, b] = rgb;
  let gain = null;
  let speaking = false;
  window.__speak = (on) => {
    speaking = on;
    if (gain) gain.gain.value = on ? 0.5 : 0;
  };
  const camera = () => {
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 360;
    const g2d = canvas.getContext('2d');
    let x = 0;
    const paint = () => {
      g2d.fillStyle = `rgb(${r}, ${g}, ${b})`;
      g2d.fillRect(0, 0, canvas.width, canvas.height);
      g2d.fillStyle = '#fff';
      g2d.fillRect(x, 0, 16, 16);
      x = (x + 8) % canvas.width;
    };
    paint();
    setInterval(paint, 50);
    return canvas.captureStream(20).getVideoTracks()[0];
  };
  const microphone = () => {
    const ctx = new AudioContext();
    const tone = ctx.createOscillator();
    tone.frequency.value = 440;
    gain = ctx.createGain();
    gain.gain.value = speaking ? 0.5 : 0;
    const out = ctx.createMediaStreamDestination();
    tone.connect(gain).connect(out);
    tone.start();
    return out.stream.getAudioTracks()[0];
  };
  navigator.mediaDevices.getUserMedia = async (c) => new MediaStream([...(c?.video ? [camera()] : []), ...(c?.audio ? [microphone()] : [])]);
};
