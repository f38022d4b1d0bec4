/**
 * The asciicast v2 format of session recordings, as pure functions: the header line, one
 * event line, and a tolerant reader. A file is one JSON header object per line, then one
 * `[seconds, code, data]` array per line. Pure, so that the browser's player can read it too.
 */

/** An event's code: output, input (keystrokes), or resize (data "COLSxROWS"). */
export type CastCode = 'o' | 'i' | 'r';

/** The header line: what the terminal was when the recording started. */
export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  /** Unix time in whole seconds. */
  timestamp: number;
  env?: { TERM?: string; SHELL?: string };
  title?: string;
}

/** One event: seconds since the start, its code, and its text. */
export type CastEvent = [time: number, code: CastCode, data: string];

/** A file as read: the header, every complete event, and whether a torn last line was left out. */
export interface CastFile { header: CastHeader; events: CastEvent[]; tornTail: boolean }

/** The header as one line, newline included. */
export function castHeaderLine(h: CastHeader): string {
  return JSON.stringify(h) + '\n';
}

/** One event as a line: the time to the microsecond, as asciinema writes it. */
export function castEventLine(seconds: number, code: CastCode, data: string): string {
  return JSON.stringify([Math.round(seconds * 1e6) / 1e6, code, data]) + '\n';
}

/** The data of a resize event. */
export function castResizeData(cols: number, rows: number): string { return `${cols}x${rows}`; }

/** Why `v` is not an asciicast v2 header, or null. */
function headerProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the first line is not a JSON object';
  const h = v as Record<string, unknown>;
  if (h.version !== 2) return `version is ${JSON.stringify(h.version)}, not 2`;
  for (const key of ['width', 'height'] as const) {
    if (!Number.isInteger(h[key]) || (h[key] as number) < 1) return `${key} is not a whole number of at least 1`;
  }
  if (h.timestamp !== undefined && !Number.isInteger(h.timestamp)) return 'timestamp is not whole seconds';
  return null;
}

/** Why `v` is not an event line, or null. */
function eventProblem(v: unknown): string | null {
  if (!Array.isArray(v) || v.length !== 3) return 'it is not a [time, code, data] array';
  const [t, code, data] = v as unknown[];
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) return 'its time is not a number of seconds';
  if (typeof code !== 'string' || code.length === 0) return 'its code is not a string';
  if (typeof data !== 'string') return 'its data is not a string';
  if (code === 'r' && !/^\d+x\d+$/.test(data)) return `its resize data '${data}' is not COLSxROWS`;
  return null;
}

/**
 * Reads an asciicast v2 file. A last line without its newline is what a crash mid-write
 * leaves: it is left out (`tornTail`), since every line before it was flushed whole. Any
 * other bad line throws an Error naming it; so does a file whose times go backwards.
 */
export function parseCast(text: string): CastFile {
  const lines = text.split('\n');
  // A complete file ends in a newline, so the last piece is empty; anything else there is torn.
  const tail = lines.pop()!;
  // Even a torn line that happens to parse is left out: without its newline it was never finished.
  const tornTail = tail !== '';
  if (lines.length === 0) {
    throw new Error(tornTail ? 'the recording has no complete header line: it was cut before its first flush' : 'the recording is empty');
  }
  let header: unknown;
  try { header = JSON.parse(lines[0]!); } catch { header = undefined; }
  const hp = headerProblem(header);
  if (hp) throw new Error(`line 1 is not an asciicast v2 header: ${hp}`);
  const events: CastEvent[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    let v: unknown;
    try { v = JSON.parse(lines[i]!); } catch { v = undefined; }
    const ep = v === undefined ? 'it is not JSON' : eventProblem(v);
    if (ep) throw new Error(`line ${i + 1} is not an asciicast event: ${ep}`);
    const e = v as CastEvent;
    if (e[0] < last) throw new Error(`line ${i + 1} goes back in time (${e[0]} s after ${last} s)`);
    last = e[0];
    events.push(e);
  }
  return { header: header as CastHeader, events, tornTail };
}
