// Handshake admission at the relay's front door (src/relay/admission.ts), with one device
// handshake allowed at a time: a second agent waits its turn instead of being shed, while an
// operator with OpenSSH, in a lane of its own, logs in at once. Then the queued one goes on.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import ssh2 from 'ssh2';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { ENROLL_LOGIN } from '../../src/protocol/names.ts';
import { eventually, fileCleanup } from '../helpers/env.ts';
import { startFixture } from '../helpers/fixture.ts';
import { relayCommand } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);

test('a device handshake over the limit waits its turn; operators have a lane of their own', async () => {
  // A long login grace, so that nothing here is dropped by the clock.
  const f = await startFixture(suite, { maxHandshakes: 1, maxInteractiveHandshakes: 4, loginGraceMs: 60_000 });
  const { port } = f.relay.sshAddress;

  // Holds the only device handshake slot: an agent's identification line, then silence.
  const staller = connect({ host: '127.0.0.1', port });
  staller.on('error', () => {});
  staller.write('SSH-2.0-ferry-agent_9.9.9\r\n');
  await eventually(() => f.relay.handshakes().device.running === 1 || null, 10_000, 'the staller to take the device slot');

  // A second agent (an ssh2 client that logs in to enrol, which any key may) queues behind it.
  const relayBlob = Buffer.from(f.relay.hostKeyLine.split(' ')[1]!, 'base64');
  const client = new ssh2.Client();
  let state = 'connecting';
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', () => { state = 'ready'; resolve(); });
    client.once('error', (err) => { state = `error: ${err.message}`; reject(err); });
  });
  client.connect({
    host: '127.0.0.1', port, username: ENROLL_LOGIN, privateKey: generateKeyPair('queued').privateKey,
    ident: 'ferry-agent_9.9.9', readyTimeout: 60_000, hostVerifier: (key: Buffer) => key.equals(relayBlob),
  });
  await eventually(() => f.relay.handshakes().device.waiting === 1 || null, 10_000, 'the second agent to be queued');

  // The device lane is full; an operator logs in anyway.
  const who = await relayCommand(f.admin, ['whoami']);
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout, /admin/);
  assert.equal(state, 'connecting', 'the queued agent is still waiting, not shed');
  assert.deepEqual(f.relay.handshakes().device, { running: 1, waiting: 1 });

  // The staller leaves; the queued agent's handshake goes on and it logs in.
  staller.destroy();
  await ready;
  client.end();
  assert.deepEqual(f.relay.handshakes().device, { running: 0, waiting: 0 }, 'the slot is free again once logged in');
});
