// Covers src/net/ws-stream.ts over a real ws server and client on loopback (plain HTTP: TLS
// adds nothing to the framing): bytes written on either end arrive in order, whole, through
// frames of every header size (the relay's end writes its own frames on the upgraded socket);
// batched writes become messages no larger than the limit, and a write over it is cut; a closed WebSocket closes the
// stream (never half-open); a text message ends the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { webSocketStream } from '../../src/net/ws-stream.ts';

const OPTS = { pingIntervalMs: 60_000, maxMessageBytes: 128 * 1024, highWaterMark: 256 * 1024 };

/** A connected pair: the relay's end (own frames on the upgraded socket) and the agent's, and each side's WebSocket. */
async function pair(t: { after(fn: () => unknown): void }): Promise<{ relay: Duplex; agent: Duplex; relayWs: WebSocket; agentWs: WebSocket }> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const accepted = new Promise<{ relay: Duplex; relayWs: WebSocket }>((resolve) => {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (ws) => resolve({ relay: webSocketStream(ws, { ...OPTS, serverSocket: socket }), relayWs: ws }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const agentWs = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}/`, { perMessageDeflate: false });
  await new Promise((resolve, reject) => { agentWs.once('open', resolve); agentWs.once('error', reject); });
  const { relay, relayWs } = await accepted;
  const agent = webSocketStream(agentWs, OPTS);
  t.after(() => { relay.destroy(); agent.destroy(); });
  return { relay, agent, relayWs, agentWs };
}

/** Reads `n` bytes from `s`. */
function read(s: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      got.push(c);
      size += c.length;
      if (size >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(got));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

test('bytes cross both ways in order, through frames with 2-, 4- and 10-byte headers', async (t) => {
  const { relay, agent } = await pair(t);
  // 100 B (7-bit length), 40 000 B (16-bit), 70 000 B (64-bit).
  const chunks = [randomBytes(100), randomBytes(40_000), randomBytes(70_000), randomBytes(1)];
  const down = read(agent, chunks.reduce((n, c) => n + c.length, 0));
  for (const c of chunks) relay.write(c);
  assert.ok((await down).equals(Buffer.concat(chunks)), 'the relay\'s frames arrive whole and in order');
  const up = read(relay, 70_100);
  agent.write(chunks[2]!);
  agent.write(chunks[0]!);
  assert.ok((await up).equals(Buffer.concat([chunks[2]!, chunks[0]!])), 'the agent\'s (masked, by ws) arrive too');
});

test('a write over the message limit is cut into messages within it', async (t) => {
  const { relay, agentWs } = await pair(t);
  const big = randomBytes(300_000);
  const messages: Buffer[] = [];
  const all = new Promise<void>((resolve) => agentWs.on('message', (d: Buffer) => { messages.push(d); if (messages.length === 3) resolve(); }));
  relay.write(big);
  await all;
  assert.deepEqual(messages.map((m) => m.length), [OPTS.maxMessageBytes, OPTS.maxMessageBytes, 300_000 - 2 * OPTS.maxMessageBytes]);
  assert.ok(Buffer.concat(messages).equals(big));
});

test('several writes that wait are batched into messages no larger than the limit', async (t) => {
  const { relay, agentWs } = await pair(t);
  const sizes: number[] = [];
  agentWs.on('message', (d: Buffer) => sizes.push(d.length));
  relay.cork();
  for (let i = 0; i < 10; i++) relay.write(randomBytes(20_000));
  relay.uncork();
  await new Promise<void>((resolve) => { const check = () => (sizes.reduce((a, b) => a + b, 0) >= 200_000 ? resolve() : setImmediate(check)); check(); });
  assert.ok(sizes.length < 10, `batched: ${sizes.length} messages for 10 writes`);
  assert.ok(sizes.every((n) => n <= OPTS.maxMessageBytes), `every message within the limit: ${sizes.join(', ')}`);
});

test('when the WebSocket closes, both streams close; a text message ends the stream', async (t) => {
  const a = await pair(t);
  const closed = Promise.all([new Promise((r) => a.relay.once('close', r)), new Promise((r) => a.agent.once('close', r))]);
  a.agentWs.close(1000);
  await closed;

  const b = await pair(t);
  const failed = new Promise<Error>((resolve) => b.agent.once('error', resolve));
  b.relayWs.send('hello', { binary: false });
  assert.match((await failed).message, /text message on a binary link/);
});
