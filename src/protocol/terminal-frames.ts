/**
 * The browser terminal's frames, both ways over its WebSocket, as binary messages. Pure:
 * Uint8Array in and out, so that it runs in the browser as well as in the relay.
 *
 * Every frame starts with the version byte, then the type byte, then the body:
 *
 *   client → relay   input   0x01  terminal bytes
 *                    resize  0x02  u16 cols, u16 rows
 *                    ack     0x03  u64 seq: every output byte before seq has arrived
 *                    close   0x04  (empty)
 *   relay → client   hello   0x81  u8 version, then the session id (UTF-8)
 *                    output  0x82  u64 seq (offset of the first byte), then terminal bytes
 *                    exit    0x83  i32 code (-1: none), then the signal name (UTF-8, may be empty)
 *                    error   0x84  u8 length, the code (ASCII), then the message (UTF-8)
 *
 * Sequence numbers count output bytes from the session's start, so that a browser that
 * reconnects can say (ack) from which byte it needs the output again. Numbers are big-endian;
 * u64 values stay below 2^53 (a JavaScript number holds them exactly).
 */
import { LIMITS } from './limits.ts';

/** The frame format's version; a frame with another version byte is refused, not guessed at. */
export const TERMINAL_FRAMES_VERSION = 1;

/** A frame from the browser to the relay. */
export type ClientFrame =
  | { type: 'input'; data: Uint8Array }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'ack'; seq: number }
  | { type: 'close' };

/** A frame from the relay to the browser. */
export type RelayFrame =
  | { type: 'hello'; version: number; sessionId: string }
  | { type: 'output'; seq: number; data: Uint8Array }
  | { type: 'exit'; code: number | null; signal: string | null }
  | { type: 'error'; code: string; message: string };

/** A decoded frame, or what is wrong with the bytes. */
export type Decoded<F> = { frame: F } | { problem: string };

const TYPE = { input: 0x01, resize: 0x02, ack: 0x03, close: 0x04, hello: 0x81, output: 0x82, exit: 0x83, error: 0x84 } as const;

/** Bytes before the body: version and type. */
const HEADER = 2;
/** Longest session id, error code and signal name. */
const MAX_SHORT_TEXT = 64;
/** An error code: upper case, digits and underscores (FerryError codes). */
const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The most terminal bytes one input or output frame carries. */
export const MAX_TERMINAL_DATA = LIMITS.maxTerminalFrameBytes - HEADER - 8;

function frame(type: number, bodyLength: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(HEADER + bodyLength);
  bytes[0] = TERMINAL_FRAMES_VERSION;
  bytes[1] = type;
  return { bytes, view: new DataView(bytes.buffer) };
}

function checkSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`a sequence number must be a whole number from 0 to 2^53-1, not ${seq}`);
}

function checkData(data: Uint8Array): void {
  if (data.length > MAX_TERMINAL_DATA) throw new RangeError(`a frame carries at most ${MAX_TERMINAL_DATA} terminal bytes, not ${data.length}: cut the data into several frames`);
}

/** What is wrong with a terminal size (whole numbers up to the limits in limits.ts), or null. */
export function terminalSizeProblem(cols: number, rows: number): string | null {
  if (!Number.isInteger(cols) || cols < 1 || cols > LIMITS.maxTerminalCols) return `cols must be 1 to ${LIMITS.maxTerminalCols}, not ${cols}`;
  if (!Number.isInteger(rows) || rows < 1 || rows > LIMITS.maxTerminalRows) return `rows must be 1 to ${LIMITS.maxTerminalRows}, not ${rows}`;
  return null;
}

function writeU64(view: DataView, at: number, n: number): void {
  view.setUint32(at, Math.floor(n / 2 ** 32));
  view.setUint32(at + 4, n >>> 0);
}

function readU64(view: DataView, at: number): number {
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

function text(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/** Encodes a frame from the browser; throws RangeError on a value no peer would accept. */
export function encodeClientFrame(f: ClientFrame): Uint8Array {
  switch (f.type) {
    case 'input': {
      checkData(f.data);
      const { bytes } = frame(TYPE.input, f.data.length);
      bytes.set(f.data, HEADER);
      return bytes;
    }
    case 'resize': {
      const problem = terminalSizeProblem(f.cols, f.rows);
      if (problem) throw new RangeError(problem);
      const { bytes, view } = frame(TYPE.resize, 4);
      view.setUint16(HEADER, f.cols);
      view.setUint16(HEADER + 2, f.rows);
      return bytes;
    }
    case 'ack': {
      checkSeq(f.seq);
      const { bytes, view } = frame(TYPE.ack, 8);
      writeU64(view, HEADER, f.seq);
      return bytes;
    }
    case 'close':
      return frame(TYPE.close, 0).bytes;
  }
}

/** Encodes a frame from the relay; throws RangeError on a value no peer would accept. */
export function encodeRelayFrame(f: RelayFrame): Uint8Array {
  switch (f.type) {
    case 'hello': {
      const id = encoder.encode(f.sessionId);
      if (id.length === 0 || id.length > MAX_SHORT_TEXT) throw new RangeError(`a session id is 1 to ${MAX_SHORT_TEXT} bytes`);
      const { bytes } = frame(TYPE.hello, 1 + id.length);
      bytes[HEADER] = f.version;
      bytes.set(id, HEADER + 1);
      return bytes;
    }
    case 'output': {
      checkSeq(f.seq);
      checkData(f.data);
      const { bytes, view } = frame(TYPE.output, 8 + f.data.length);
      writeU64(view, HEADER, f.seq);
      bytes.set(f.data, HEADER + 8);
      return bytes;
    }
    case 'exit': {
      const signal = encoder.encode(f.signal ?? '');
      if (signal.length > MAX_SHORT_TEXT) throw new RangeError(`a signal name is at most ${MAX_SHORT_TEXT} bytes`);
      if (f.code !== null && (!Number.isInteger(f.code) || f.code < 0 || f.code > 0x7fffffff)) throw new RangeError(`an exit code is a whole number from 0, not ${f.code}`);
      const { bytes, view } = frame(TYPE.exit, 4 + signal.length);
      view.setInt32(HEADER, f.code ?? -1);
      bytes.set(signal, HEADER + 4);
      return bytes;
    }
    case 'error': {
      if (!ERROR_CODE.test(f.code) || f.code.length > MAX_SHORT_TEXT) throw new RangeError(`an error code is upper case letters, digits and '_', at most ${MAX_SHORT_TEXT}: not '${f.code}'`);
      const message = encoder.encode(f.message);
      if (HEADER + 1 + f.code.length + message.length > LIMITS.maxTerminalFrameBytes) throw new RangeError('the error message is too long for one frame');
      const { bytes } = frame(TYPE.error, 1 + f.code.length + message.length);
      bytes[HEADER] = f.code.length;
      bytes.set(encoder.encode(f.code), HEADER + 1);
      bytes.set(message, HEADER + 1 + f.code.length);
      return bytes;
    }
  }
}

/** The version and type checks every frame gets; the body's view, or a problem. */
function open(bytes: Uint8Array): { type: number; body: Uint8Array; view: DataView } | { problem: string } {
  if (bytes.length < HEADER) return { problem: `a frame is at least ${HEADER} bytes (version, type), not ${bytes.length}` };
  if (bytes.length > LIMITS.maxTerminalFrameBytes) return { problem: `a frame is at most ${LIMITS.maxTerminalFrameBytes} bytes, not ${bytes.length}` };
  if (bytes[0] !== TERMINAL_FRAMES_VERSION) return { problem: `frame version ${bytes[0]} is not ${TERMINAL_FRAMES_VERSION}, the one this side speaks: reload the console page` };
  const body = bytes.subarray(HEADER);
  return { type: bytes[1]!, body, view: new DataView(body.buffer, body.byteOffset, body.byteLength) };
}

function exactly(body: Uint8Array, n: number, what: string): string | null {
  return body.length === n ? null : `a ${what} frame has a ${n}-byte body, not ${body.length}`;
}

/** Decodes a frame from the browser, strictly: a frame that is off in any way is a problem, never a guess. */
export function decodeClientFrame(bytes: Uint8Array): Decoded<ClientFrame> {
  const o = open(bytes);
  if ('problem' in o) return o;
  const { body, view } = o;
  switch (o.type) {
    case TYPE.input:
      return { frame: { type: 'input', data: body.slice() } };
    case TYPE.resize: {
      const bad = exactly(body, 4, 'resize');
      if (bad) return { problem: bad };
      const cols = view.getUint16(0);
      const rows = view.getUint16(2);
      const problem = terminalSizeProblem(cols, rows);
      return problem ? { problem } : { frame: { type: 'resize', cols, rows } };
    }
    case TYPE.ack: {
      const bad = exactly(body, 8, 'ack');
      if (bad) return { problem: bad };
      const seq = readU64(view, 0);
      return Number.isSafeInteger(seq) ? { frame: { type: 'ack', seq } } : { problem: 'an ack sequence number is at most 2^53-1' };
    }
    case TYPE.close: {
      const bad = exactly(body, 0, 'close');
      return bad ? { problem: bad } : { frame: { type: 'close' } };
    }
    default:
      return { problem: `frame type 0x${o.type.toString(16)} is not one a browser sends` };
  }
}

/** Decodes a frame from the relay, strictly. */
export function decodeRelayFrame(bytes: Uint8Array): Decoded<RelayFrame> {
  const o = open(bytes);
  if ('problem' in o) return o;
  const { body, view } = o;
  switch (o.type) {
    case TYPE.hello: {
      const id = body.length >= 2 && body.length <= 1 + MAX_SHORT_TEXT ? text(body.subarray(1)) : null;
      return id ? { frame: { type: 'hello', version: body[0]!, sessionId: id } } : { problem: `a hello frame has a version byte and a session id of 1 to ${MAX_SHORT_TEXT} UTF-8 bytes` };
    }
    case TYPE.output: {
      if (body.length < 8) return { problem: 'an output frame starts with an 8-byte sequence number' };
      const seq = readU64(view, 0);
      if (!Number.isSafeInteger(seq)) return { problem: 'an output sequence number is at most 2^53-1' };
      return { frame: { type: 'output', seq, data: body.slice(8) } };
    }
    case TYPE.exit: {
      if (body.length < 4 || body.length > 4 + MAX_SHORT_TEXT) return { problem: `an exit frame has a 4-byte code and a signal name of at most ${MAX_SHORT_TEXT} bytes` };
      const code = view.getInt32(0);
      const signal = text(body.subarray(4));
      if (code < -1 || signal === null) return { problem: 'an exit frame has a code of -1 or more and a UTF-8 signal name' };
      return { frame: { type: 'exit', code: code === -1 ? null : code, signal: signal === '' ? null : signal } };
    }
    case TYPE.error: {
      const n = body[0] ?? 0;
      const code = body.length >= 1 + n ? text(body.subarray(1, 1 + n)) : null;
      const message = text(body.subarray(1 + n));
      if (n === 0 || code === null || !ERROR_CODE.test(code) || message === null) return { problem: 'an error frame has a code (upper case, digits, _) and a UTF-8 message' };
      return { frame: { type: 'error', code, message } };
    }
    default:
      return { problem: `frame type 0x${o.type.toString(16)} is not one the relay sends` };
  }
}
