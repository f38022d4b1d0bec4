// Covers src/protocol/terminal-frames.ts: the browser terminal's frames, round trips and bad frames.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIMITS } from '../../src/protocol/limits.ts';
import {
  MAX_TERMINAL_DATA, TERMINAL_FRAMES_VERSION, decodeClientFrame, decodeRelayFrame, encodeClientFrame, encodeRelayFrame,
  type ClientFrame, type RelayFrame,
} from '../../src/protocol/terminal-frames.ts';

const bytes = (...b: number[]) => new Uint8Array(b);
const utf8 = (s: string) => new TextEncoder().encode(s);

test('every client frame round-trips', () => {
  const frames: ClientFrame[] = [
    { type: 'input', data: utf8('ls /\r') },
    { type: 'input', data: new Uint8Array(0) },
    { type: 'input', data: new Uint8Array(MAX_TERMINAL_DATA).fill(0xff) },
    { type: 'resize', cols: 80, rows: 24 },
    { type: 'resize', cols: LIMITS.maxTerminalCols, rows: 1 },
    { type: 'ack', seq: 0 },
    { type: 'ack', seq: 2 ** 40 + 7 },
    { type: 'ack', seq: Number.MAX_SAFE_INTEGER },
    { type: 'close' },
  ];
  for (const f of frames) {
    const encoded = encodeClientFrame(f);
    assert.equal(encoded[0], TERMINAL_FRAMES_VERSION);
    assert.ok(encoded.length <= LIMITS.maxTerminalFrameBytes);
    assert.deepEqual(decodeClientFrame(encoded), { frame: f }, f.type);
  }
});

test('every relay frame round-trips, UTF-8 included', () => {
  const frames: RelayFrame[] = [
    { type: 'hello', version: TERMINAL_FRAMES_VERSION, sessionId: '0b6f3c1e-0f7a-4a57-9d2e-0c1d2e3f4a5b' },
    { type: 'output', seq: 0, data: utf8('hi\r\n') },
    { type: 'output', seq: 123_456_789_012, data: utf8('grüße ✓') },
    { type: 'output', seq: 5, data: new Uint8Array(MAX_TERMINAL_DATA) },
    { type: 'exit', code: 3, signal: null },
    { type: 'exit', code: null, signal: 'KILL' },
    { type: 'exit', code: null, signal: null },
    { type: 'error', code: 'FERRY_PERMISSION_DENIED', message: "'bob' may not log in to 'cam' as 'root': roles viewer allow pi — ✗" },
  ];
  for (const f of frames) assert.deepEqual(decodeRelayFrame(encodeRelayFrame(f)), { frame: f }, f.type);
});

test('the body layout is as documented: big-endian numbers after version and type', () => {
  assert.deepEqual(encodeClientFrame({ type: 'resize', cols: 0x0102, rows: 0x0304 }), bytes(1, 0x02, 1, 2, 3, 4));
  assert.deepEqual(encodeClientFrame({ type: 'ack', seq: 2 ** 32 + 2 }), bytes(1, 0x03, 0, 0, 0, 1, 0, 0, 0, 2));
  assert.deepEqual(encodeRelayFrame({ type: 'output', seq: 258, data: bytes(0x68) }), bytes(1, 0x82, 0, 0, 0, 0, 0, 0, 1, 2, 0x68));
  assert.deepEqual(encodeRelayFrame({ type: 'exit', code: null, signal: null }), bytes(1, 0x83, 0xff, 0xff, 0xff, 0xff));
});

test('bad client frames are refused with what is wrong', () => {
  const table: [string, Uint8Array, RegExp][] = [
    ['empty', bytes(), /at least 2 bytes/],
    ['version only', bytes(1), /at least 2 bytes/],
    ['another version', bytes(2, 0x01, 0x41), /frame version 2 is not 1.*reload/],
    ['version 0', bytes(0, 0x04), /frame version 0/],
    ['unknown type', bytes(1, 0x7f), /type 0x7f is not one a browser sends/],
    ['a relay frame', encodeRelayFrame({ type: 'output', seq: 0, data: bytes(1) }), /type 0x82 is not one a browser sends/],
    ['short resize', bytes(1, 0x02, 0, 80, 0), /resize frame has a 4-byte body, not 3/],
    ['long resize', bytes(1, 0x02, 0, 80, 0, 24, 0), /4-byte body, not 5/],
    ['zero cols', bytes(1, 0x02, 0, 0, 0, 24), /cols must be 1 to 1000, not 0/],
    ['huge rows', bytes(1, 0x02, 0, 80, 0xff, 0xff), /rows must be 1 to 1000, not 65535/],
    ['short ack', bytes(1, 0x03, 0, 0, 0, 0), /ack frame has a 8-byte body, not 4/],
    ['ack past 2^53', bytes(1, 0x03, 0x00, 0x20, 0, 0, 0, 0, 0, 0), /at most 2\^53-1/],
    ['close with a body', bytes(1, 0x04, 0), /close frame has a 0-byte body, not 1/],
    ['too long', (() => { const b = new Uint8Array(LIMITS.maxTerminalFrameBytes + 1); b[0] = 1; b[1] = 1; return b; })(), /at most 65536 bytes, not 65537/],
  ];
  for (const [what, frame, problem] of table) {
    const d = decodeClientFrame(frame);
    assert.ok('problem' in d, `${what}: decoded as ${JSON.stringify(d)}`);
    assert.match(d.problem, problem, what);
  }
});

test('bad relay frames are refused with what is wrong', () => {
  const table: [string, Uint8Array, RegExp][] = [
    ['a client frame', encodeClientFrame({ type: 'close' }), /type 0x4 is not one the relay sends/],
    ['hello without an id', bytes(1, 0x81, 1), /session id of 1 to 64/],
    ['hello with bad UTF-8', bytes(1, 0x81, 1, 0xc3), /session id/],
    ['output without seq', bytes(1, 0x82, 0, 0, 0), /8-byte sequence number/],
    ['output seq past 2^53', bytes(1, 0x82, 0xff, 0, 0, 0, 0, 0, 0, 0), /at most 2\^53-1/],
    ['exit too short', bytes(1, 0x83, 0, 0), /4-byte code/],
    ['exit below -1', bytes(1, 0x83, 0xff, 0xff, 0xff, 0xfe), /code of -1 or more/],
    ['error without code', bytes(1, 0x84, 0, 0x68), /error frame has a code/],
    ['error code longer than the body', bytes(1, 0x84, 9, 0x41), /error frame has a code/],
    ['error code in lower case', bytes(1, 0x84, 1, 0x61), /error frame has a code/],
  ];
  for (const [what, frame, problem] of table) {
    const d = decodeRelayFrame(frame);
    assert.ok('problem' in d, `${what}: decoded as ${JSON.stringify(d)}`);
    assert.match(d.problem, problem, what);
  }
});

test('encoders refuse values that no peer would decode', () => {
  assert.throws(() => encodeClientFrame({ type: 'input', data: new Uint8Array(MAX_TERMINAL_DATA + 1) }), /at most 65526 terminal bytes.*several frames/);
  assert.throws(() => encodeClientFrame({ type: 'resize', cols: 0, rows: 24 }), /cols must be 1 to 1000/);
  assert.throws(() => encodeClientFrame({ type: 'resize', cols: 80.5, rows: 24 }), /cols/);
  assert.throws(() => encodeClientFrame({ type: 'ack', seq: -1 }), /sequence number/);
  assert.throws(() => encodeRelayFrame({ type: 'output', seq: 2 ** 53, data: bytes() }), /sequence number/);
  assert.throws(() => encodeRelayFrame({ type: 'hello', version: 1, sessionId: '' }), /session id/);
  assert.throws(() => encodeRelayFrame({ type: 'error', code: 'oops', message: '' }), /error code/);
  assert.throws(() => encodeRelayFrame({ type: 'error', code: 'X', message: 'm'.repeat(LIMITS.maxTerminalFrameBytes) }), /too long/);
  assert.throws(() => encodeRelayFrame({ type: 'exit', code: -2, signal: null }), /exit code/);
});
