// Covers src/relay/recording.ts (the asciicast v2 writer) and src/protocol/asciicast.ts (its
// tolerant reader): events as the spec has them, split and invalid UTF-8, input off by
// default, resize, flushing on the clock, back-pressure, and torn last lines.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { systemClock } from '../../src/common/clock.ts';
import { parseCast } from '../../src/protocol/asciicast.ts';
import { Recorder, type RecorderOptions } from '../../src/relay/recording.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-recording-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function open(o: Partial<RecorderOptions> = {}) {
  const clock = new FakeClock();
  const file = join(dir, `d${++n}`, 'sub', 'r.cast');
  return { clock, file, recorder: Recorder.open({ file, width: 80, height: 24, clock, ...o }) };
}

/**
 * The file checked against the asciicast v2 spec by hand, not with parseCast (which is under
 * test too): valid UTF-8, one JSON value per line, a header object with version 2, integer
 * width, height and timestamp, then [number, string, string] events with non-decreasing times.
 */
function specCheck(file: string): { header: Record<string, unknown>; events: [number, string, string][] } {
  const bytes = readFileSync(file);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  assert.ok(text.endsWith('\n'), 'the file ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(header.version, 2);
  for (const k of ['width', 'height', 'timestamp']) assert.ok(Number.isInteger(header[k]), `${k} is an integer`);
  const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
  let last = 0;
  for (const e of events) {
    assert.equal(e.length, 3);
    assert.equal(typeof e[0], 'number');
    assert.ok(e[0] >= last, 'times do not go back');
    last = e[0];
    assert.ok(['o', 'i', 'r'].includes(e[1]), `code ${e[1]}`);
    assert.equal(typeof e[2], 'string');
    if (e[1] === 'r') assert.match(e[2], /^\d+x\d+$/);
  }
  return { header, events };
}

const enc = (s: string) => Buffer.from(s, 'utf8');

describe('Recorder', () => {
  test('writes a v2 header, output and resize events with their times; file 0600 in dirs 0700; sha256 and size of the bytes', async () => {
    const { clock, file, recorder } = open({ env: { TERM: 'xterm-256color', SHELL: '' }, title: 'pi@cam (alice)' });
    const r = await recorder;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(file, '..')).mode & 0o777, 0o700);
    assert.equal(statSync(join(file, '..', '..')).mode & 0o777, 0o700);
    clock.advance(1500);
    r.output(enc('hello\r\n'));
    clock.advance(500);
    r.resize(120, 40);
    r.output(enc('"quoted" \\ \x1b[1mbold\x1b[0m'));
    const s = await r.close();
    const { header, events } = specCheck(file);
    assert.deepEqual(header, { version: 2, width: 80, height: 24, timestamp: Math.floor(1_000_000 / 1000), env: { TERM: 'xterm-256color' }, title: 'pi@cam (alice)' });
    assert.deepEqual(events, [[1.5, 'o', 'hello\r\n'], [2, 'r', '120x40'], [2, 'o', '"quoted" \\ \x1b[1mbold\x1b[0m']]);
    const bytes = readFileSync(file);
    assert.deepEqual(s, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), durationMs: 2000, events: 3 });
  });

  test('a multi-byte character split across chunks comes out whole', async () => {
    const { file, recorder } = open();
    const r = await recorder;
    const text = 'é→😀';
    const b = enc(text);
    for (let i = 0; i < b.length; i++) r.output(b.subarray(i, i + 1));
    await r.close();
    const { events } = specCheck(file);
    assert.equal(events.map((e) => e[2]).join(''), text);
    assert.ok(events.every((e) => !e[2].includes('\uFFFD')), 'no replacement character');
  });

  test('bytes that are not UTF-8 become U+FFFD, and the file stays valid JSON and UTF-8', async () => {
    const { file, recorder } = open();
    const r = await recorder;
    r.output(Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xed, 0xa0, 0x80, 0x0a]));
    // A character cut by the end of the session is not lost either.
    r.output(Buffer.from([0xe2, 0x82]));
    await r.close();
    const { events } = specCheck(file);
    const all = events.map((e) => e[2]).join('');
    assert.equal(all, 'a\uFFFD\uFFFDb\uFFFD\uFFFD\uFFFD\n\uFFFD');
  });

  test('keystrokes are not recorded unless asked for', async () => {
    const off = open();
    const r1 = await off.recorder;
    r1.input(enc('secret-password\r'));
    r1.output(enc('$ '));
    await r1.close();
    assert.deepEqual(specCheck(off.file).events.map((e) => e[1]), ['o']);
    assert.ok(!readFileSync(off.file, 'utf8').includes('secret'), 'the password is nowhere in the file');

    const on = open({ recordInput: true });
    const r2 = await on.recorder;
    const b = enc('ü\r');
    r2.input(b.subarray(0, 1));
    r2.input(b.subarray(1));
    await r2.close();
    assert.deepEqual(specCheck(on.file).events, [[0, 'i', 'ü\r']]);
  });

  test('events reach the disk at the flush interval, not before', async () => {
    let onFlushed: ((events: number) => void) | null = null;
    const { clock, file, recorder } = open({ flushIntervalMs: 250, onFlush: (w) => onFlushed?.(w.events) });
    const r = await recorder;
    const headerOnly = readFileSync(file, 'utf8');
    assert.equal(headerOnly.split('\n').length, 2, 'the header is on disk at open');
    r.output(enc('one'));
    clock.advance(249);
    await new Promise((res) => setImmediate(res));
    assert.equal(readFileSync(file, 'utf8'), headerOnly, 'nothing yet before 250 ms');
    const wrote = new Promise<number>((res) => { onFlushed = res; });
    clock.advance(1);
    assert.equal(await wrote, 1);
    assert.deepEqual(parseCast(readFileSync(file, 'utf8')).events, [[0, 'o', 'one']]);
    await r.close();
  });

  test('back-pressure: past the bound the source is told to pause, and to resume once written; nothing is dropped', async () => {
    const calls: boolean[] = [];
    let resumed!: () => void;
    const resumedP = new Promise<void>((res) => { resumed = res; });
    const { file, recorder } = open({ maxBufferedBytes: 4096, onPressure: (p) => { calls.push(p); if (!p) resumed(); } });
    const r = await recorder;
    const chunk = 'x'.repeat(1000);
    const accepted: boolean[] = [];
    for (let i = 0; i < 10; i++) accepted.push(r.output(enc(chunk)));
    assert.equal(accepted.slice(0, 4).every(Boolean), true, 'under the bound: go on');
    assert.equal(accepted.at(-1), false, 'over it: pause');
    assert.deepEqual(calls, [true]);
    await resumedP;
    assert.deepEqual(calls, [true, false]);
    assert.equal(r.paused, false);
    await r.close();
    assert.equal(specCheck(file).events.map((e) => e[2]).join(''), chunk.repeat(10));
  });

  test('a flood that honours the pause keeps memory within the bound plus one chunk, and loses nothing', async () => {
    const file = join(dir, `flood-${++n}`, 'r.cast');
    let resume: (() => void) | null = null;
    const max = 256 * 1024;
    const r = await Recorder.open({ file, width: 80, height: 24, clock: systemClock, maxBufferedBytes: max, onPressure: (p) => { if (!p) resume?.(); } });
    const chunk = Buffer.alloc(32 * 1024, 'y');
    const total = 64 * 1024 * 1024;
    let peak = 0;
    let pauses = 0;
    const started = performance.now();
    for (let sent = 0; sent < total; sent += chunk.length) {
      const go = r.output(chunk);
      peak = Math.max(peak, r.bufferedBytes);
      if (!go) {
        pauses++;
        await new Promise<void>((res) => { resume = res; });
      }
    }
    const s = await r.close();
    const ms = performance.now() - started;
    assert.ok(pauses > 0, 'the flood outran the disk at least once');
    assert.ok(peak <= max + chunk.length + 64, `peak buffered ${peak} within ${max} + one chunk`);
    let got = 0;
    for (const e of parseCast(readFileSync(file, 'utf8')).events) got += e[2].length;
    assert.equal(got, total);
    // Shown with --test-reporter=spec; for the report, not asserted.
    console.log(`# recorder flood: ${total / 1048576} MiB in ${ms.toFixed(0)} ms (${(total / 1048576 / (ms / 1000)).toFixed(0)} MiB/s), ${pauses} pauses, peak buffered ${(peak / 1024).toFixed(0)} KiB, file ${(s.bytes / 1048576).toFixed(1)} MiB`);
  });

  test('close twice is refused', async () => {
    const { recorder } = open();
    const r = await recorder;
    await r.close();
    await assert.rejects(r.close(), { code: 'FERRY_STATE_INVALID' });
  });

  test('an existing file is not overwritten', async () => {
    const first = open();
    await (await first.recorder).close();
    await assert.rejects(Recorder.open({ file: first.file, width: 80, height: 24, clock: new FakeClock() }), { code: 'FERRY_STORE', message: /cannot create the recording/ });
  });
});

describe('parseCast', () => {
  const head = '{"version":2,"width":80,"height":24,"timestamp":1}\n';
  test('reads every complete line and leaves out a torn last one', () => {
    const f = parseCast(`${head}[0.1,"o","a"]\n[0.2,"o","b`);
    assert.deepEqual(f.events, [[0.1, 'o', 'a']]);
    assert.equal(f.tornTail, true);
    // Even a last line that parses is left out when its newline is missing: it was never finished.
    assert.deepEqual(parseCast(`${head}[0.1,"o","a"]`).events, []);
    assert.equal(parseCast(`${head}[0.1,"o","a"]\n`).tornTail, false);
  });
  test('a bad complete line, header or time going back is an error naming the line', () => {
    assert.throws(() => parseCast(`${head}[0.1,"o","a"\n[0.2,"o","b"]\n`), /line 2 is not an asciicast event: it is not JSON/);
    assert.throws(() => parseCast('{"version":1,"width":80,"height":24}\n'), /line 1 is not an asciicast v2 header: version is 1, not 2/);
    assert.throws(() => parseCast(`${head}[0.2,"o","a"]\n[0.1,"o","b"]\n`), /line 3 goes back in time/);
    assert.throws(() => parseCast(`${head}[0.2,"r","80 by 24"]\n`), /resize data '80 by 24' is not COLSxROWS/);
    assert.throws(() => parseCast('{"version":2'), /no complete header line/);
  });
});
