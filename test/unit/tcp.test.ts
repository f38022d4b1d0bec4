// connectTcp (src/net/tcp.ts) with redialling: a refusal ends every dial at once, and the
// dial that gets through is handed back working. (Finding a path that comes back is checked
// in test/system/ and measured by the network-drop benchmark: it needs a path that drops packets.)
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isFerryError } from '../../src/common/errors.ts';
import { connectTcp } from '../../src/net/tcp.ts';

test('a refused connect fails at once even while redialling', async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(connectTcp('127.0.0.1', port, 60_000, false, 10), (err: unknown) => isFerryError(err, 'FERRY_CONNECT_FAILED') && /ECONNREFUSED/.test(err.message));
});

test('redialling to a listener that answers gives a working connection', async () => {
  const server = createServer((s) => s.end('hi'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const socket = await connectTcp('127.0.0.1', port, 5_000, false, 1);
    const got = await new Promise<string>((resolve) => { let t = ''; socket.on('data', (d: Buffer) => { t += d.toString(); }); socket.on('end', () => resolve(t)); });
    assert.equal(got, 'hi');
    socket.destroy();
  } finally {
    server.close();
  }
});
