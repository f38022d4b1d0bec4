/**
 * What the terminal page keeps in sessionStorage (this tab only) so that a reload resumes its
 * session: the device and login, the first output byte the page does not have, and the last
 * output bytes, which the new page draws before the relay sends the rest.
 */

/** Output kept for redrawing after a reload: enough for a full screen and some scrollback. */
export const TAIL_BYTES = 256 * 1024;

const PREFIX = 'ferry.terminal.';

/** A session as the page keeps it. */
export interface StoredSession { device: string; login: string | null; seq: number; tail: Uint8Array | null }

interface Saved { device: string; login: string | null; seq: number; tail?: string }

/** Bytes as a string of code points 0-255 (sessionStorage holds only strings). */
function toLatin1(bytes: Uint8Array): string {
  let s = '';
  for (let at = 0; at < bytes.length; at += 8192) s += String.fromCharCode(...bytes.subarray(at, at + 8192));
  return s;
}

function fromLatin1(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i) & 0xff;
  return bytes;
}

/** The stored session `id`, or null. */
export function loadSession(id: string): StoredSession | null {
  try {
    const raw = sessionStorage.getItem(PREFIX + id);
    if (raw === null) return null;
    const s = JSON.parse(raw) as Saved;
    if (typeof s.device !== 'string' || !Number.isSafeInteger(s.seq)) return null;
    return { device: s.device, login: s.login ?? null, seq: s.seq, tail: typeof s.tail === 'string' ? fromLatin1(s.tail) : null };
  } catch {
    return null;
  }
}

/** Stores session `id`; a full or refused storage only loses the redraw, never the session. */
export function saveSession(id: string, s: StoredSession): void {
  const saved: Saved = { device: s.device, login: s.login, seq: s.seq };
  if (s.tail !== null) saved.tail = toLatin1(s.tail);
  try {
    sessionStorage.setItem(PREFIX + id, JSON.stringify(saved));
  } catch {
    try {
      sessionStorage.setItem(PREFIX + id, JSON.stringify({ ...saved, tail: undefined }));
    } catch {
      // Storage refused outright (private mode): a reload then starts the resume from byte 0.
    }
  }
}

/** Forgets session `id` (it ended). */
export function forgetSession(id: string): void {
  try {
    sessionStorage.removeItem(PREFIX + id);
  } catch {
    // Nothing stored, then.
  }
}

/** The last `size` bytes of a stream, kept as they arrive. */
export class Tail {
  private chunks: Uint8Array[] = [];
  private length = 0;
  constructor(private readonly size: number = TAIL_BYTES) {}

  /** Adds bytes at the end, dropping whole chunks from the front beyond the size. */
  push(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.length += bytes.length;
    while (this.chunks.length > 1 && this.length - this.chunks[0]!.length >= this.size) this.length -= this.chunks.shift()!.length;
  }

  /**
   * The kept bytes, starting after the first line break once the front was dropped, so that a
   * redraw does not begin inside a line or an escape sequence.
   */
  bytes(): Uint8Array {
    const all = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) { all.set(c, at); at += c.length; }
    if (all.length <= this.size) return all;
    const cut = all.length - this.size;
    const nl = all.indexOf(0x0a, cut);
    return nl === -1 ? all.subarray(cut) : all.subarray(nl + 1);
  }
}
