// Covers src/relay/recording.ts after a crash: a child process records, is killed with
// SIGKILL mid-stream, and its file is read: every complete line is valid asciicast v2, and
// every event it had reported flushed is there, in order, with nothing missing in between.
// When the Debian package asciinema is installed, its own reader reads the files too.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { parseCast } from '../../src/protocol/asciicast.ts';
import { Recorder } from '../../src/relay/recording.ts';
import { systemClock } from '../../src/common/clock.ts';

const READER = join(import.meta.dirname, '..', 'helpers', 'asciinema-read.py');
// Debian's python, where the asciinema package installs its module (not a pyenv or venv one).
const PYTHON = '/usr/bin/python3';
const NO_ASCIINEMA = spawnSync(PYTHON, ['-c', 'import asciinema.asciicast'], { stdio: 'ignore' }).status === 0
  ? false : 'needs the Debian package asciinema (apt-get install asciinema): its reader checks the files';

/** The file as asciinema's own reader sees it. */
function asciinemaRead(file: string): { version: number; header: Record<string, unknown>; events: [number, string, string][] } {
  const r = spawnSync(PYTHON, [READER, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof asciinemaRead>;
}

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
  if (!NO_ASCIINEMA && !cast.tornTail) assert.deepEqual(asciinemaRead(file).events, cast.events, "asciinema's reader reads the same events");
});

test("asciinema's own reader reads a recording with split and invalid UTF-8, resizes and keystrokes", { skip: NO_ASCIINEMA }, async () => {
  const file = join(dir, 'reader', 'r.cast');
  const r = await Recorder.open({ file, width: 100, height: 30, env: { TERM: 'xterm-256color', SHELL: '/bin/bash' }, title: 'pi@cam (alice)', recordInput: true, clock: systemClock });
  const emoji = Buffer.from('😀');
  r.output(emoji.subarray(0, 2));
  r.output(Buffer.concat([emoji.subarray(2), Buffer.from([0xff, 0x0a])]));
  r.resize(132, 43);
  r.input(Buffer.from('ls\r'));
  r.output(Buffer.from('"a\\b"\x1b[0m\r\n'));
  await r.close();
  const got = asciinemaRead(file);
  assert.equal(got.version, 2);
  assert.deepEqual({ ...got.header, timestamp: 0 }, { version: 2, width: 100, height: 30, timestamp: 0, env: { TERM: 'xterm-256color', SHELL: '/bin/bash' }, title: 'pi@cam (alice)' });
  assert.deepEqual(got.events.map((e) => [e[1], e[2]]), [['o', '😀\uFFFD\n'], ['r', '132x43'], ['i', 'ls\r'], ['o', '"a\\b"\x1b[0m\r\n']]);
  assert.deepEqual(got.events, parseCast(readFileSync(file, 'utf8')).events, 'the same as ferry reads');
});
