/**
 * Test mode (loopback only, docs/architecture.md §8): no ICE server off loopback (an explicitly
 * empty list when the service gave none, so no stack falls back to a public STUN server; a TURN
 * server on 127.0.0.0/8 is kept, its relay candidates are on loopback too) and only 127.0.0.0/8
 * candidates (host or relay), in SDP and in trickled candidates. Never used outside tests and
 * local development.
 *
 * @module loopback-only
 */

/**
 * `RTCPeerConnection` configuration of test mode: only the given ICE servers whose every URL
 * names a 127.0.0.0/8 host (an explicitly empty list when none).
 */
export function testModeRtcConfig(extra = {}, iceServers = []) {
  return { ...extra, iceServers: iceServers.filter(isLoopbackIceServer), iceCandidatePoolSize: 0 };
}

/** True if every URL of an `RTCIceServer` (`turn:`, `turns:`, `stun:`) names a 127.0.0.0/8 host. */
export function isLoopbackIceServer(server) {
  const urls = [server?.urls ?? []].flat();
  return urls.length > 0 && urls.every((u) => /^(turns?|stuns?):127\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?(\?.*)?$/.test(String(u)));
}

/**
 * True if an ICE candidate line (`candidate:...` or `a=candidate:...`) names a 127.0.0.0/8
 * address, whatever its type (a relay candidate's address is the TURN server's relay address).
 */
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
