// Test mode's loopback filter (loopback-only.js) in Node, no browser: relay candidates on
// 127.0.0.1 pass like host candidates, and so do the SFU's ICE-TCP candidates on 127.0.0.1 (an
// ICE-TCP call in test mode needs them); anything off loopback is dropped; only ICE servers on
// 127.0.0.0/8 are kept, and with none the list is explicitly empty.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopbackCandidate, isLoopbackIceServer, loopbackOnlySdp, testModeRtcConfig } from '../loopback-only.js';

const HOST = 'a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0';
const RELAY = 'a=candidate:2 1 udp 41885439 127.0.0.1 49170 typ relay raddr 127.0.0.1 rport 50001 generation 0';
const RELAY_OFF = 'a=candidate:3 1 udp 41885439 198.51.100.7 49170 typ relay raddr 127.0.0.1 rport 50001 generation 0';
const SRFLX = 'a=candidate:4 1 udp 1677729535 203.0.113.9 61000 typ srflx raddr 10.0.0.2 rport 50002 generation 0';

test('relay candidates on loopback are kept, others dropped', () => {
  assert.ok(isLoopbackCandidate(HOST));
  assert.ok(isLoopbackCandidate(RELAY));
  assert.ok(isLoopbackCandidate(RELAY.replace(/^a=/, '')));
  assert.ok(!isLoopbackCandidate(RELAY_OFF));
  assert.ok(!isLoopbackCandidate(SRFLX));
  const sdp = ['v=0', HOST, RELAY, RELAY_OFF, SRFLX, 'a=end-of-candidates', ''].join('\r\n');
  assert.equal(loopbackOnlySdp(sdp), ['v=0', HOST, RELAY, 'a=end-of-candidates', ''].join('\r\n'));
});

test('tcp candidates on loopback (the SFU\'s ICE-TCP passive one) are kept, others dropped', () => {
  const TCP = 'a=candidate:5 1 tcp 1694498815 127.0.0.1 7881 typ host tcptype passive';
  const TCP_OFF = 'a=candidate:6 1 tcp 1694498815 198.51.100.7 7881 typ host tcptype passive';
  assert.ok(isLoopbackCandidate(TCP));
  assert.ok(!isLoopbackCandidate(TCP_OFF));
  const sdp = ['v=0', HOST, TCP, TCP_OFF, ''].join('\r\n');
  assert.equal(loopbackOnlySdp(sdp), ['v=0', HOST, TCP, ''].join('\r\n'));
});

test('test mode keeps only ICE servers on loopback', () => {
  const local = { urls: ['turn:127.0.0.1:3478?transport=udp'], username: '1700000000:x', credential: 'c' };
  const remote = { urls: ['turns:turn.example.com:443?transport=tcp'], username: 'u', credential: 'c' };
  const mixed = { urls: ['turn:127.0.0.1:3478', 'turn:198.51.100.7:3478'], username: 'u', credential: 'c' };
  assert.ok(isLoopbackIceServer(local));
  assert.ok(isLoopbackIceServer({ urls: 'stun:127.0.0.1' }));
  assert.ok(!isLoopbackIceServer(remote));
  assert.ok(!isLoopbackIceServer(mixed));
  assert.ok(!isLoopbackIceServer({ urls: [] }));
  assert.deepEqual(testModeRtcConfig({ iceTransportPolicy: 'relay' }, [local, remote, mixed]), {
    iceTransportPolicy: 'relay',
    iceServers: [local],
    iceCandidatePoolSize: 0,
  });
  assert.deepEqual(testModeRtcConfig().iceServers, []);
});
