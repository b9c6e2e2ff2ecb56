/**
 * Media states (docs/protocol.md `media_state`): what this device tells the others about its
 * microphone, camera and screen share, and what the page draws from theirs (a muted-microphone
 * mark, initials instead of a black tile).
 *
 * @module media-state
 */

/** The `media_state` message for this device's local state (`call.state.local`). */
export function mediaStateMessage(local) {
  return {
    type: 'media_state',
    audio: local.micOn ? 'on' : 'muted',
    video: local.cameraOn ? 'on' : 'off',
    screen: !!local.screenOn,
  };
}

/** Applies a device's `media_state` (the server message or an entry of `joined.media_states`) to its participant. */
export function applyMediaState(participant, m) {
  participant.audioMuted = m.audio === 'muted';
  participant.videoOff = m.video === 'off';
  participant.screenOn = !!m.screen;
}
