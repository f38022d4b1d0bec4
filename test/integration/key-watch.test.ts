// The operator-key watch (`authorized-keys --watch`) belongs to the device's registered link
// (src/relay/device-link.ts): a second connection that logs in with the same device key
// cannot take it over, so the live agent keeps receiving operator-key updates.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { connectToRelay } from '../../src/agent/relay-connection.ts';
import { tcpDialer } from '../../src/net/dialer.ts';
import { openStateDir } from '../../src/agent/state.ts';
import { AUTHORIZED_KEYS_COMMAND } from '../../src/protocol/authorized-keys.ts';
import { AGENT_LOGIN } from '../../src/protocol/names.ts';
import { eventually, fileCleanup, makeKey } from '../helpers/env.ts';
import { LOGIN, startEmbedded } from '../helpers/embedded.ts';
import { relayCommand, ssh } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);

/** Asks for the key watch on `client`: the error message when refused, null when the relay opened it. */
function askForWatch(client: Client): Promise<string | null> {
  return new Promise((resolve) => client.exec(AUTHORIZED_KEYS_COMMAND, (err, stream) => {
    if (err) return resolve(err.message);
    stream.on('data', () => {});
    stream.stderr.resume();
    resolve(null);
  }));
}

test('a second connection with the device key cannot take the live agent\'s key watch', { timeout: 60_000 }, async () => {
  const e = await startEmbedded(suite, { cam: null });
  const { key } = openStateDir(join(e.f.dir, 'agent-cam'));
  const intruder = await connectToRelay({
    dialer: tcpDialer('127.0.0.1', e.f.relay.sshAddress.port, { keepaliveMs: 20_000, redialMs: 0 }), fingerprint: e.f.relay.fingerprint, key, username: AGENT_LOGIN,
    keepaliveIntervalMs: 20_000, keepaliveCountMax: 3, connectTimeoutMs: 10_000,
  });
  suite.after(() => intruder.end());
  // It never registered the tunnel, so it is not the device's link and gets no watch.
  assert.notEqual(await askForWatch(intruder), null, 'the watch is refused to a connection that holds no registration');

  // A new operator is added; the live agent must learn the key and let them in.
  const bob = makeKey(e.f.dir, 'bob_key');
  const add = await relayCommand(e.f.admin, ['user', 'add', 'bob', '--key', bob.pub]);
  assert.equal(add.code, 0, add.stderr);
  const bobSsh = e.setupFor('bob', bob.path);
  await eventually(async () => (await ssh(bobSsh, [`${LOGIN}@cam`, 'true'], { timeoutMs: 10_000 })).code === 0 || null, 20_000, 'bob to log in to cam');
  assert.equal(e.f.relay.registry.size, 1);
});

test('a second connection that registers takes the link and its watch; when the agent takes the link back, the watch follows it', { timeout: 60_000 }, async () => {
  const e = await startEmbedded(suite, { dome: null });
  const { key } = openStateDir(join(e.f.dir, 'agent-dome'));
  const agentLink = e.f.relay.registry.get('dome');
  const intruder = await connectToRelay({
    dialer: tcpDialer('127.0.0.1', e.f.relay.sshAddress.port, { keepaliveMs: 20_000, redialMs: 0 }), fingerprint: e.f.relay.fingerprint, key, username: AGENT_LOGIN,
    keepaliveIntervalMs: 20_000, keepaliveCountMax: 3, connectTimeoutMs: 10_000,
  });
  suite.after(() => intruder.end());
  await new Promise<void>((resolve, reject) => intruder.forwardIn('dome', 22, (err) => (err ? reject(err) : resolve())));
  assert.equal(await askForWatch(intruder), null, 'the registered link may watch');
  // The live agent lost the link; it reconnects, takes it back, and its new link watches again.
  await eventually(() => { const l = e.f.relay.registry.get('dome'); return (l && l !== agentLink && l.instance !== null) || null; }, 20_000, 'the agent to take the link back');

  const carol = makeKey(e.f.dir, 'carol_key');
  const add = await relayCommand(e.f.admin, ['user', 'add', 'carol', '--key', carol.pub]);
  assert.equal(add.code, 0, add.stderr);
  const carolSsh = e.setupFor('carol', carol.path);
  await eventually(async () => (await ssh(carolSsh, [`${LOGIN}@dome`, 'true'], { timeoutMs: 10_000 })).code === 0 || null, 20_000, 'carol to log in to dome');
});
