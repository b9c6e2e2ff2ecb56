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
