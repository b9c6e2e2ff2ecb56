/**
 * Test mode (loopback only, docs/architecture.md §8): no ICE servers at all (an explicitly empty list, so no
 * stack falls back to a public STUN server) and only 127.0.0.0/8 candidates, in SDP and in
 * trickled candidates. Never used outside tests and local development.
 *
 * @module loopback-only
 */

/** `RTCPeerConnection` configuration of test mode: an explicitly empty ICE server list. */
export function testModeRtcConfig(extra = {}) {
  return { ...extra, iceServers: [], iceCandidatePoolSize: 0 };
}

/** True if an ICE candidate line (`candidate:...` or `a=candidate:...`) names a 127.0.0.0/8 address. */
export function isLoopbackCandidate(line) {
  const parts = String(line).replace(/^a=/, '').trim().split(/\s+/);
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
  const address = parts[4] ?? '';
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** Removes every non-loopback `a=candidate` line from an SDP. */
export function loopbackOnlySdp(sdp) {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || isLoopbackCandidate(line))
    .join('\r\n');
}

/** Resolves once `pc` finished gathering (non-trickle offers and answers), or after `timeoutMs`. */
export function gatheringComplete(pc, timeoutMs = 5000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}
