// Covers src/relay/recording.ts after a crash: a child process records, is killed with
// SIGKILL mid-stream, and its file is read: every complete line is valid asciicast v2, and
// every event it had reported flushed is there, in order, with nothing missing in between.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { parseCast } from '../../src/protocol/asciicast.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-recording-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('kill -9 mid-stream: the recording is readable up to its last flush', { timeout: 60_000 }, async () => {
  const file = join(dir, 'recordings', 'r.cast');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'helpers', 'recording-child.ts'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  let reported = 0;
  let flushes = 0;
  for await (const line of createInterface({ input: child.stdout! })) {
    reported = (JSON.parse(line) as { events: number }).events;
    // Past a few flushes, with output still pouring in: kill it without warning.
    if (++flushes === 6) { child.kill('SIGKILL'); break; }
  }
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  assert.ok(reported > 0, 'the child had flushed events before it died');
  const cast = parseCast(readFileSync(file, 'utf8'));
  assert.deepEqual(cast.header, { version: 2, width: 80, height: 24, timestamp: cast.header.timestamp });
  assert.ok(cast.events.length >= reported, `every event reported flushed is there (${cast.events.length} >= ${reported})`);
  cast.events.forEach((e, i) => assert.deepEqual([e[1], e[2]], ['o', `line ${i} é😀\r\n`], `event ${i} is whole and in order`));
});
