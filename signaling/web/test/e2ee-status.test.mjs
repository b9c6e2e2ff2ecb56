// What the encryption badge says (e2ee-status.js), on virtual time in plain Node: waiting for a
// publisher's key, encrypted once every publisher's frames open, a named warning when a held
// key stops opening a sender's frames, and the calm security-code notice text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EncryptionStatus, namesText, remotePublishers, securityCodeChangedText } from '../e2ee-status.js';

const bob = { device: 'dev-b', name: 'Bob', slot: 2 };
const carol = { device: 'dev-c', name: 'Carol', slot: 3 };
const pubs = (...ps) => ps.map((p) => ({ hasKey: true, ...p }));

test('badge_waits_for_a_publishers_key_then_says_encrypted', () => {
  const s = new EncryptionStatus();
  // Bob publishes; his key has not arrived: his frames fail (unknown KID), and that is waiting.
  let r = s.observe(0, [{ slot: 2, decrypted: 0, failures: 40 }], pubs({ ...bob, hasKey: false }), true);
  assert.equal(r.state, 'waiting');
  assert.equal(r.text, 'Waiting for keys');
  assert.deepEqual(r.waitingFor, ['Bob']);
  r = s.observe(1000, [{ slot: 2, decrypted: 0, failures: 90 }], pubs({ ...bob, hasKey: false }), true);
  assert.equal(r.state, 'waiting');
  // The key arrives: no warning for the failures before it, even while no frame opened yet.
  for (let t = 2000; t <= 5000; t += 1000) {
    r = s.observe(t, [{ slot: 2, decrypted: 0, failures: 95 }], pubs(bob), true);
    assert.equal(r.state, 'encrypted', `at ${t}`);
  }
  r = s.observe(6000, [{ slot: 2, decrypted: 300, failures: 95 }], pubs(bob), true);
  assert.equal(r.state, 'encrypted');
  assert.equal(r.text, 'End-to-end encrypted');
});

test('badge_waits_while_this_device_has_no_key_of_its_own', () => {
  const s = new EncryptionStatus();
  assert.equal(s.observe(0, [], [], false).state, 'waiting');
  assert.equal(s.observe(1000, [], [], true).state, 'encrypted');
  // A viewer publishes nothing and has no key of its own to wait for.
  assert.equal(new EncryptionStatus().observe(0, [], [], null).state, 'encrypted');
});

test('badge_names_the_sender_whose_frames_fail_with_a_held_key', () => {
  const s = new EncryptionStatus();
  let counts = { b: { d: 0, f: 0 }, c: { d: 0, f: 0 } };
  const report = () => [{ slot: 2, decrypted: counts.b.d, failures: counts.b.f }, { slot: 3, decrypted: counts.c.d, failures: counts.c.f }];
  let r;
  for (let t = 0; t <= 4000; t += 1000) {
    counts.b.d += 50;
    counts.c.d += 50;
    r = s.observe(t, report(), pubs(bob, carol), true);
  }
  assert.equal(r.state, 'encrypted');
  // Bob's frames stop opening (a wrong key): after a full window of failures, he is named.
  for (let t = 5000; t <= 7000; t += 1000) {
    counts.b.f += 50;
    counts.c.d += 50;
    r = s.observe(t, report(), pubs(bob, carol), true);
  }
  assert.equal(r.state, 'failing');
  assert.equal(r.text, 'Frames from Bob fail to decrypt');
  assert.deepEqual(r.failing, ['Bob']);
  assert.deepEqual(r.failingDevices, [bob.device], 'the tile of the failing sender is marked too');
  // A few failures among frames that open (a key rotation) are no warning.
  for (let t = 8000; t <= 11000; t += 1000) {
    counts.b.f += 3;
    counts.b.d += 50;
    counts.c.d += 50;
    r = s.observe(t, report(), pubs(bob, carol), true);
  }
  assert.equal(r.state, 'encrypted');
});

test('badge_starts_over_when_the_worker_counts_from_zero', () => {
  const s = new EncryptionStatus();
  for (let t = 0; t <= 4000; t += 1000) s.observe(t, [{ slot: 2, decrypted: 100 * t, failures: 0 }], pubs(bob), true);
  // A rejoin: a new worker, counts from zero, the key not yet here.
  const r = s.observe(5000, [{ slot: 2, decrypted: 0, failures: 10 }], pubs({ ...bob, hasKey: false }), true);
  assert.equal(r.state, 'waiting');
  assert.equal(s.history.length, 1);
});

test('remote_publishers_are_callers_and_presenters_not_viewers_or_recorders', () => {
  const participants = new Map([
    ['me', { device: 'me', self: true, role: 'caller', name: 'Me', slot: 1 }],
    ['dev-b', { device: 'dev-b', role: 'caller', name: 'Bob', slot: 2 }],
    ['dev-p', { device: 'dev-p', role: 'presenter', name: 'Pat', slot: 4 }],
    ['dev-v', { device: 'dev-v', role: 'viewer', name: 'Vic', slot: 5 }],
    ['dev-r', { device: 'dev-r', role: 'recorder', name: 'Rec', slot: 6 }],
  ]);
  const got = remotePublishers(participants, new Map([['dev-b', { generation: 0, step: 0 }]]));
  assert.deepEqual(got, [
    { device: 'dev-b', name: 'Bob', slot: 2, hasKey: true },
    { device: 'dev-p', name: 'Pat', slot: 4, hasKey: false },
  ]);
});

test('security_code_notice_text_names_who_joined_and_left', () => {
  assert.equal(securityCodeChangedText({ joined: ['Bob'] }), 'Bob joined — the security code changed; compare it again');
  assert.equal(securityCodeChangedText({ joined: ['Bob'], left: ['Carol'] }), 'Bob joined, Carol left — the security code changed; compare it again');
  assert.equal(namesText(['A', 'B', 'C']), 'A and 2 others');
});
