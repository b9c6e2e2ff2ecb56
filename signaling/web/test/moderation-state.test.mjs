// `Moderation` (moderation.js) in plain Node: the `moderate` messages it sends, what it keeps of
// `joined.moderator` and the server's `moderation`, and actions it refuses to send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTIONS, Moderation } from '../moderation.js';

function moderation() {
  const sent = [];
  let changes = 0;
  const m = new Moderation({ send: (msg) => sent.push(msg) > 0, changed: () => { changes += 1; } });
  return { m, sent, changes: () => changes };
}

test('moderate_messages_name_a_device_only_for_device_actions', () => {
  const { m, sent } = moderation();
  for (const action of ACTIONS) {
    const device = ['ask_mute', 'remove', 'admit', 'deny', 'lower_hand'].includes(action) ? 'dev-b' : undefined;
    assert.equal(m.act(action, device), true);
  }
  assert.deepEqual(sent[0], { type: 'moderate', action: 'ask_mute', device: 'dev-b' });
  assert.deepEqual(sent[2], { type: 'moderate', action: 'lock' });
  assert.deepEqual(sent.find((x) => x.action === 'end_call'), { type: 'moderate', action: 'end_call' });
  assert.deepEqual(sent.at(-1), { type: 'moderate', action: 'lower_hand', device: 'dev-b' });
  assert.equal(sent.length, ACTIONS.length);
  assert.throws(() => m.act('mute_everyone'), /unknown moderation action/);
  assert.throws(() => m.act('remove'), /needs a device/);
  assert.throws(() => m.act('lower_hand'), /needs a device/);
  assert.equal(sent.length, ACTIONS.length, 'nothing sent for a refused action');
});

test('joined_and_moderation_set_the_state', () => {
  const { m, changes } = moderation();
  m.onJoined({ type: 'joined' });
  assert.equal(m.state.moderator, false, 'no `moderator` field: not a moderator');
  m.onJoined({ type: 'joined', moderator: true });
  assert.equal(m.state.moderator, true);
  m.onModeration({ locked: true, lobby: true, waiting: [{ device: 'dev-w', identity: 'w' }, { identity: 'no device' }, null] });
  assert.deepEqual(m.state, { moderator: true, locked: true, lobby: true, waiting: [{ device: 'dev-w', identity: 'w' }] });
  m.onModeration({ locked: 'yes' });
  assert.deepEqual(m.state, { moderator: true, locked: false, lobby: false, waiting: [] });
  assert.equal(changes(), 4);
});
