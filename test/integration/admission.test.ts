// Handshake admission at the relay's front door (src/relay/admission.ts), with one device
// handshake allowed at a time: a second agent waits its turn instead of being shed, while an
// operator with OpenSSH, in a lane of its own, logs in at once. Then the queued one goes on.
// A connection that waits too long is dropped, and a full lane sheds newcomers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { connectToRelay } from '../../src/agent/relay-connection.ts';
import { tcpDialer } from '../../src/net/dialer.ts';
import { isFerryError } from '../../src/common/errors.ts';
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
  const staller = silentAgent(port);
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

test('one address that floods the operators\' lane with silent handshakes does not lock out an operator from another', async () => {
  // Default lane sizes; a long login grace, so that the flood holds its sockets for the whole test.
  const f = await startFixture(suite, { loginGraceMs: 120_000 });
  const { port } = f.relay.sshAddress;
  const lane = f.relay.handshakes().interactive;
  assert.deepEqual(lane, { running: 0, waiting: 0 });
  // More connections than the lane has slots, all from 127.0.0.2: an identification line, then nothing.
  const flood = Array.from({ length: 40 }, () => silentClient(port, 'SSH-2.0-OpenSSH_9.2p1\r\n', '127.0.0.2'));
  await eventually(() => { const c = f.relay.handshakes().interactive; return c.running + c.waiting === flood.length || null; }, 20_000, 'the flood to be admitted or queued');

  // An operator from 127.0.0.1 gets in while the flood still holds its sockets.
  const who = await relayCommand(f.admin, ['whoami'], { timeoutMs: 60_000 });
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout, /admin/);
  assert.equal(flood.filter((s) => s.destroyed).length, 0, 'the flood is still connected');
  const c = f.relay.handshakes().interactive;
  assert.equal(c.running + c.waiting, flood.length, 'its connections are queued, not dropped');
  for (const s of flood) s.destroy();
});

/** A TCP connection from `localAddress` that sends `ident` and then nothing. */
function silentClient(port: number, ident: string, localAddress: string): Socket {
  const s = connect({ host: '127.0.0.1', port, localAddress });
  s.on('error', () => {});
  s.resume();
  s.write(ident);
  return s;
}

/** A TCP connection that sends an agent's identification line and then nothing. */
function silentAgent(port: number): Socket {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  s.resume(); // Read (and drop) what the relay sends, so that its close is seen.
  s.write('SSH-2.0-ferry-agent_9.9.9\r\n');
  return s;
}

/** Milliseconds from now until `s` is closed by the relay. */
function closedAfter(s: Socket): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => s.once('close', () => resolve(Date.now() - started)));
}

test('a connection that waits too long for a slot is dropped, a full lane sheds newcomers, and operators still get in', async () => {
  const f = await startFixture(suite, { maxHandshakes: 1, maxUnauthenticated: 2, handshakeQueueWaitMs: 1_000, loginGraceMs: 60_000 });
  const { port } = f.relay.sshAddress;
  const staller = silentAgent(port);
  await eventually(() => f.relay.handshakes().device.running === 1 || null, 10_000, 'the staller to take the device slot');
  const waiter = silentAgent(port);
  const waiterClosed = closedAfter(waiter);
  await eventually(() => f.relay.handshakes().device.waiting === 1 || null, 10_000, 'the second one to be queued');
  // The devices' share (2) is taken: a third agent is shed as soon as it says who it is.
  const third = silentAgent(port);
  assert.ok(await closedAfter(third) < 1_000, 'shed at once');
  // The operators' room is separate.
  const who = await relayCommand(f.admin, ['whoami']);
  assert.equal(who.code, 0, who.stderr);
  // The queued one is dropped after its wait, while the staller keeps its slot (its grace is 60 s).
  const waited = await waiterClosed;
  assert.ok(waited >= 900, `dropped after about handshakeQueueWaitMs, not ${waited} ms`);
  assert.equal(staller.destroyed, false, 'the running handshake is not touched');
  assert.deepEqual(f.relay.handshakes().device, { running: 1, waiting: 0 });
  staller.destroy();
});

test('an agent whose connection is dropped after the relay\'s ident fails the attempt at once instead of hanging', async () => {
  // What a busy relay does to a connection that waited too long: its ident went out, then it closes.
  const server = createServer((s) => { s.end('SSH-2.0-ferry-relay\r\n'); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const started = Date.now();
    await assert.rejects(
      connectToRelay({ dialer: tcpDialer('127.0.0.1', port, { keepaliveMs: 20_000, redialMs: 0 }), fingerprint: 'SHA256:x', key: generateKeyPair('a'), username: 'ferry-agent', keepaliveIntervalMs: 20_000, keepaliveCountMax: 3, connectTimeoutMs: 60_000 }),
      (err: unknown) => isFerryError(err, 'FERRY_CONNECT_FAILED') && /closed the connection before the login/.test(err.message),
    );
    assert.ok(Date.now() - started < 10_000, 'it failed by itself, not by the 60 s timeout');
  } finally {
    server.close();
  }
});
