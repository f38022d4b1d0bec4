// The agent's built-in SSH server's connection handling, over in-memory streams: how a
// connection that never logs in ends, silent or with its input ended. The compatibility suite (test/integration/embedded-*)
// covers the rest with the real OpenSSH client through a relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { EmbeddedServer } from '../../src/agent/embedded/server.ts';
import { silentLogger } from '../../src/common/log.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { streamPair } from '../helpers/stream-pair.ts';

/** A login grace time short enough for a test. */
const GRACE_MS = 200;
/** How long a test waits for the server to close a stream before it counts as never. */
const WAIT_MS = 3_000;

/** A built-in server with a short login grace time, and a client stream joined to one of its connections. */
function connect(): { client: Duplex; server: Duplex; received: () => string } {
  const embedded = new EmbeddedServer({ hostKey: generateKeyPair('test').privateKey, forwardRules: [], log: silentLogger(), loginGraceMs: GRACE_MS });
  const [client, server] = streamPair();
  let received = '';
  client.on('data', (d: Buffer) => { received += d.toString('latin1'); });
  embedded.handle(server, { address: '127.0.0.1', port: 1 });
  return { client, server, received: () => received };
}

/** Milliseconds until `s` closes, or null when it has not within WAIT_MS. */
function closesWithin(s: Duplex): Promise<number | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), WAIT_MS);
    s.once('close', () => { clearTimeout(timer); resolve(Math.round(performance.now() - started)); });
  });
}

test('a client that never sends its identification is dropped at the login grace time, as by sshd', async () => {
  const { server } = connect();
  const ms = await closesWithin(server);
  assert.notEqual(ms, null, `the stream was closed within ${WAIT_MS} ms (login grace ${GRACE_MS} ms)`);
  assert.ok(ms! >= GRACE_MS - 20, `not before the grace time: ${ms} ms`);
});

test('a client that sends its identification and then nothing is dropped at the login grace time', async () => {
  const { client, server } = connect();
  client.write('SSH-2.0-silent_test\r\n');
  assert.notEqual(await closesWithin(server), null, `the stream was closed within ${WAIT_MS} ms (login grace ${GRACE_MS} ms)`);
});

test('a client whose input ends before its identification is let go at once, without waiting for the login grace time', async () => {
  // In memory the EOF comes before ssh2 has even sent its identification (it gives up then
  // without sending it); through the relay it comes later (test/integration/embedded-connection.test.ts).
  const { client, server } = connect();
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  client.end();
  const ms = await closesWithin(server);
  assert.notEqual(ms, null, 'the server closed the stream');
  assert.ok(ms! < GRACE_MS, `before the login grace time: ${ms} ms`);
  await ended;
});

test('a client whose input ends after the identifications is let go at once', async () => {
  const { client, server, received } = connect();
  client.write('SSH-2.0-eof_test\r\n');
  await new Promise<void>((resolve) => client.on('data', () => { if (received().includes('\n')) resolve(); }));
  assert.match(received(), /^SSH-2\.0-OpenSSH-compatible ferry-agent_/);
  client.end();
  const ms = await closesWithin(server);
  assert.notEqual(ms, null, 'the server closed the stream');
  assert.ok(ms! < GRACE_MS, `before the login grace time: ${ms} ms`);
});
