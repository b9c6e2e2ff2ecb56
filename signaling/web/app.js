/**
 * Page entry: the lobby (room, token, name, watch-only), the pre-join screen (camera preview,
 * microphone level, devices, join with camera or microphone off), then the call screen. A link
 * with a room and a token opens at the pre-join screen; `join=1` joins at once (default
 * devices); a watch-only viewer has nothing to preview and joins from the lobby.
 *
 * URL parameters (query or fragment; prefer the fragment for the token, it never reaches a
 * server log): `room`, `token`, `name`, `watch=1` (broadcast viewer: watch only), `test=1`
 * (loopback only: ICE servers and candidates on 127.0.0.0/8 only; `window.__call` and
 * `window.__prejoin` for the browser tests), `relay=1` (media only through
 * the TURN servers `joined` names: `iceTransportPolicy: "relay"`), `join=1` (join at once),
 * `signaling=ws://…` (default: `/v1/rtc` on this origin), `admin_key` (a trusted recording-policy
 * admin key, base64url; may repeat; also `<meta name="e2ee-admin-keys">`, space separated).
 *
 * @module app
 */
import { Call } from './call.js';
import { joinFailureText } from './call-errors.js';
import { IdentityStore } from './identity-store.js';
import { deviceIdOf, listDevices } from './devices.js';
import { encodedTransformSupported } from './media-crypto.js';
import { PreJoin } from './prejoin.js';
import { h, icon, replace } from './ui/dom.js';
import { CallView } from './ui/call-view.js';
import { PreJoinView } from './ui/prejoin-view.js';

/** Parameters from the query string and the fragment (the fragment wins). */
export function pageParams(location = globalThis.location) {
  const q = new URLSearchParams(location.search);
  const f = new URLSearchParams(location.hash.replace(/^#/, ''));
  const get = (k) => f.get(k) ?? q.get(k);
  const adminKeys = [...q.getAll('admin_key'), ...f.getAll('admin_key')];
  const meta = document.querySelector('meta[name="e2ee-admin-keys"]')?.content?.trim();
  if (meta) adminKeys.push(...meta.split(/\s+/));
  return {
    room: get('room') ?? '',
    token: get('token') ?? '',
    name: get('name') ?? '',
    watchOnly: get('watch') === '1',
    testMode: get('test') === '1',
    relayOnly: get('relay') === '1',
    autoJoin: get('join') === '1',
    signalingUrl: get('signaling') ?? undefined,
    trustedAdminKeys: adminKeys,
  };
}

function lobby(root, params, onJoin, error) {
  const room = h('input', { name: 'room', required: true, value: params.room, placeholder: 'standup', autocomplete: 'off' });
  const name = h('input', { name: 'name', value: params.name, placeholder: 'Your name', autocomplete: 'name' });
  const token = h('textarea', { name: 'token', required: true, rows: 3, placeholder: 'Paste the access token you were given', spellcheck: 'false' });
  token.value = params.token;
  const watch = h('input', { type: 'checkbox', name: 'watch' });
  watch.checked = params.watchOnly;
  const supported = encodedTransformSupported();
  const form = h(
    'form',
    {
      class: 'lobby-card',
      onsubmit: (e) => {
        e.preventDefault();
        onJoin({ ...params, room: room.value.trim(), name: name.value.trim(), token: token.value.trim(), watchOnly: watch.checked });
      },
    },
    h('div', { class: 'brand' }, icon('lock'), h('span', {}, 'Private call')),
    h('p', { class: 'lede' }, 'Audio, video and screens are encrypted on your device. The servers relay them without being able to see or hear them.'),
    h('label', {}, 'Room', room),
    h('label', {}, 'Name', name),
    h('label', {}, 'Access token', token),
    params.token
      ? null
      : h(
          'div',
          { class: 'how-to-join', role: 'note' },
          h('strong', {}, 'No invitation yet?'),
          h('p', {}, 'Joining needs an invitation link (or the access token in it) from whoever runs the call: the app that set up the meeting, or the person who invited you. Open that link and everything here is filled in; or paste the token above.'),
          h('p', {}, 'Running this service yourself? ', h('code', {}, 'signaling token --room ROOM --identity NAME'), ' prints a token; ', h('code', {}, 'signaling dev'), ' prints ready-made links.'),
        ),
    h('label', { class: 'check' }, watch, 'Watch only (broadcast viewer)'),
    error ? h('div', { class: 'form-error', role: 'alert' }, icon('warn'), error) : null,
    supported ? null : h('div', { class: 'form-error' }, icon('warn'), 'This browser cannot encrypt media frames (no encoded transforms): joining is not possible.'),
    // A viewer joins from here; anyone else sees the pre-join screen (devices) first.
    h('button', { class: 'primary big', type: 'submit', disabled: !supported }, 'Continue'),
    params.testMode ? h('p', { class: 'hint' }, 'Test mode: loopback network only.') : null,
  );
  replace(root, h('div', { class: 'lobby' }, form));
}

/** Why a call ended, in words: a `left` reason, a close that is not retried, or a rejoin refused. */
const ENDED_TEXT = {
  leave: 'You left the call.',
  kicked: 'You were removed from the call.',
  call_ended: 'A moderator ended the call for everyone.',
  room_closed: 'The room was closed.',
  replaced: 'You joined from another window.',
  connection_closed: 'The connection was lost.',
  flood: 'The call server disconnected this page for sending too many messages.',
  protocol_violation: 'The call server disconnected this page after a message it could not accept.',
};

function ended(root, reason, again) {
  // A rejoin refused for good (token expired, room gone, …) says so in the join's words.
  const text = ENDED_TEXT[reason] ?? joinFailureText({ code: reason });
  replace(root, h('div', { class: 'lobby' }, h('div', { class: 'lobby-card' }, h('div', { class: 'brand' }, icon('lock'), h('span', {}, 'Call ended')), h('p', { class: 'lede' }, text), h('button', { class: 'primary big', onclick: again }, 'Back to the lobby'))));
}

/** Mounts a call view for `call` into `root` and keeps it drawn; returns the view. */
export function mountCall(root, call, options = {}) {
  const actions = {
    setMic: (on) => call.setMic(on),
    setCamera: (on) => call.setCamera(on),
    setScreen: (on) => call.setScreen(on).catch((e) => call.warn('screen', `Screen share failed: ${e.message}`)),
    pin: (d) => call.pin(d),
    leave: () => call.leave(),
    rejoin: () => call.rejoin(),
    verificationCodes: (d) => call.verificationCodesWith(d),
    setVerified: (d, v) => call.setVerified(d, v),
    sendChat: (text) => call.sendChat(text),
    setChatOpen: (open) => call.chat?.setOpen(open),
    listDevices: () => listDevices(),
    currentDevices: () => ({ camera: deviceIdOf(call.local.camera), microphone: deviceIdOf(call.local.mic), speaker: call.state.speaker }),
    useDevice: (kind, id) => call.useDevice(kind, id),
    setSpeaker: (id) => call.setSpeaker(id),
    moderate: (action, device) => call.moderate(action, device),
    setHand: (raised) => call.setHand(raised),
    react: (emoji) => call.react(emoji).catch((e) => console.warn(`reaction: ${e.message}`)),
    // A view switch changes the tiles' sizes: a full draw subscribes them at their new sizes.
    redraw: () => schedule(),
  };
  const view = new CallView(root, actions, options);
  let scheduled = false;
  const draw = () => {
    scheduled = false;
    const sizes = view.render(call.state);
    call.setVisibleSizes?.(sizes);
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(draw);
    }
  };
  call.addEventListener('change', schedule);
  addEventListener('resize', schedule);
  draw();
  return view;
}

/**
 * The pre-join screen for `p`: Join starts the call with the stream it opened, Back returns to
 * the lobby (closing the devices).
 */
function prejoin(root, p, join) {
  const pre = new PreJoin();
  exposeForTests(p, '__prejoin', pre);
  const view = new PreJoinView(root, pre, {
    room: p.room,
    name: p.name,
    onJoin: ({ name }) => {
      view.close();
      join({ ...p, name: name || p.name }, pre.take());
    },
    onBack: () => {
      view.close();
      pre.close();
      lobby(root, p, (q) => (q.watchOnly ? join(q) : prejoin(root, q, join)));
    },
  });
  pre.start().catch((err) => console.warn('pre-join:', err));
}

/**
 * Test mode only (`test=1`, the loopback flag every browser test sets): `window.__call` (the
 * current `Call`) and `window.__prejoin` (the pre-join step's `PreJoin`), for the browser tests
 * and the console. A normal page exposes neither; the tests use their public API only.
 */
function exposeForTests(p, name, value) {
  if (p.testMode) window[name] = value;
}

/** Starts the page. */
export async function main(root = document.getElementById('app')) {
  const params = pageParams();
  const store = await IdentityStore.open();
  // From the lobby: a viewer joins at once, anyone else sees the pre-join screen first.
  const fromLobby = (p) => (p.watchOnly ? join(p) : prejoin(root, p, join));
  // `media`: `{localStream, speaker}` from the pre-join screen (none: opened at join).
  const join = async (p, media = {}) => {
    replace(root, h('div', { class: 'lobby' }, h('div', { class: 'lobby-card' }, h('div', { class: 'brand' }, icon('lock'), h('span', {}, 'Joining…')), h('p', { class: 'lede' }, 'Checking keys and connecting.'))));
    const call = new Call({ ...p, ...media, identityStore: store });
    exposeForTests(p, '__call', call);
    const waiting = () => {
      if (call.state.phase !== 'waiting') return;
      call.removeEventListener('change', waiting);
      replace(root, h('div', { class: 'lobby' }, h('div', { class: 'lobby-card waiting', role: 'status' }, h('div', { class: 'brand' }, icon('lock'), h('span', {}, 'Waiting')), h('p', { class: 'lede' }, 'Waiting for a moderator to let you in.'))));
    };
    call.addEventListener('change', waiting);
    try {
      await call.join();
    } catch (err) {
      // A join that failed before media started leaves the preview's tracks with us.
      for (const t of media.localStream?.getTracks() ?? []) t.stop();
      // The words for a user; the code and the browser's message went to the console.
      lobby(root, p, fromLobby, call.state.error?.text ?? err.message);
      return;
    }
    const view = mountCall(root, call);
    call.addEventListener('change', () => {
      if (call.state.phase === 'left' && !view.gone) {
        view.gone = true;
        ended(root, call.state.leftReason, () => lobby(root, p, fromLobby));
      }
    });
  };
  if (params.autoJoin && params.room && params.token) await join(params);
  else if (params.room && params.token && !params.watchOnly) prejoin(root, params, join);
  else lobby(root, params, fromLobby);
}
