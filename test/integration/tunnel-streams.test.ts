// Byte-stream semantics through the tunnel: half-close in both directions and many
// concurrent channels over one link, with a plain TCP service as the device's target.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { eventually, fileCleanup } from '../helpers/env.ts';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { ssh } from '../helpers/ssh-client.ts';

let f: Fixture;
let target: Server;
const suite = fileCleanup(after);

before(async () => {
  // The target reads until EOF, then answers with the count and the hash of what it got:
  // an answer that can only arrive if the tunnel keeps the way back open after EOF.
  target = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => { n += d.length; h.update(d); });
    s.on('end', () => s.end(`${n} ${h.digest('hex')}\n`));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  suite.after(() => new Promise<void>((r) => target.close(() => r())));
  f = await startFixture(suite);
  await f.device('counter', { config: { sshTarget: { host: '127.0.0.1', port: (target.address() as { port: number }).port } } });
});

test('an answer sent after EOF comes back through the tunnel', async () => {
  const r = await ssh(f.admin, ['-W', 'counter:22', 'relay'], { input: 'abc' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `3 ${createHash('sha256').update('abc').digest('hex')}\n`);
});

test('an immediate EOF with no data still gets the answer', async () => {
  const r = await ssh(f.admin, ['-W', 'counter:22', 'relay'], { input: '' });
  assert.equal(r.stdout, `0 ${createHash('sha256').digest('hex')}\n`);
});

test('32 channels at once over one link each carry their own bytes', async () => {
  const inputs = Array.from({ length: 32 }, () => randomBytes(64 * 1024 + Math.floor(Math.random() * 1024)));
  const results = await Promise.all(inputs.map((input) => ssh(f.admin, ['-W', 'counter:22', 'relay'], { input })));
  results.forEach((r, i) => assert.equal(r.stdout, `${inputs[i]!.length} ${createHash('sha256').update(inputs[i]!).digest('hex')}\n`, `channel ${i}: ${r.stderr}`));
  // Every channel that ended also ended its connection to the target: nothing is left open.
  const open = () => new Promise<number>((r) => target.getConnections((_err, n) => r(n)));
  await eventually(async () => (await open()) === 0 || null, 10_000, 'the agent to close every connection to the target');
});

test('when the device cannot reach its SSH target, the operator is told so', async () => {
  await f.device('broken', { config: { sshTarget: { host: '127.0.0.1', port: 1 } } });
  const r = await ssh(f.admin, ['-W', 'broken:22', 'relay'], { input: '' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /open failed: connect failed: device 'broken' could not reach its SSH target/);
});
