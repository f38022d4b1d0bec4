/**
 * The recorder: writes one terminal session as asciicast v2 while it runs. Events are
 * buffered and written every `flushIntervalMs`, whole lines only, so that after a crash the
 * file is readable up to the last flush (parseCast leaves out a torn last line). The file is
 * fsynced at close and every `fsyncIntervalMs`. It is never cut at a size: back-pressure
 * pauses the source instead (see `output`).
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, TimerHandle } from '../common/clock.ts';
import { FerryError } from '../common/errors.ts';
import { castEventLine, castHeaderLine, castResizeData, type CastCode, type CastHeader } from '../protocol/asciicast.ts';
import { LIMITS } from '../protocol/limits.ts';

/** What a recorder needs: where, what terminal, and its limits. */
export interface RecorderOptions {
  /** The .cast file to create; it must not exist. Missing directories are made at 0700. */
  file: string;
  width: number;
  height: number;
  env?: { TERM?: string; SHELL?: string };
  title?: string;
  /** Record keystrokes as `"i"` events. Off unless asked for: they capture passwords. */
  recordInput?: boolean;
  clock: Clock;
  flushIntervalMs?: number;
  fsyncIntervalMs?: number;
  maxBufferedBytes?: number;
  /**
   * Called with true when more than `maxBufferedBytes` wait for the disk (pause the source),
   * and with false once they are down to half of it (resume).
   */
  onPressure?(paused: boolean): void;
  /** Called after each write with the totals on disk so far (for tests and metrics). */
  onFlush?(written: { events: number; bytes: number }): void;
}

/** What a finished recording is: its size and sha256 (of the file's bytes), its length and event count. */
export interface RecordingSummary { bytes: number; sha256: string; durationMs: number; events: number }

/** One session's recording, open for events until `close`. */
export class Recorder {
  readonly #o: RecorderOptions;
  readonly #fh: FileHandle;
  readonly #startedAt: number;
  readonly #hash: Hash = createHash('sha256');
  readonly #out = new TextDecoder('utf-8');
  readonly #in = new TextDecoder('utf-8');
  readonly #max: number;
  #pending: string[] = [];
  #pendingBytes = 0;
  #pendingEvents = 0;
  #inFlightBytes = 0;
  #writing: Promise<void> | null = null;
  #timer: TimerHandle | null = null;
  #lastSync: number;
  #written = { events: 0, bytes: 0 };
  #paused = false;
  #closed = false;
  #failure: Error | null = null;

  private constructor(o: RecorderOptions, fh: FileHandle) {
    this.#o = o;
    this.#fh = fh;
    this.#startedAt = o.clock.now();
    this.#lastSync = this.#startedAt;
    this.#max = o.maxBufferedBytes ?? LIMITS.recordingMaxBufferedBytes;
  }

  /** Creates the file (mode 0600) and writes its header to disk before returning. */
  static async open(o: RecorderOptions): Promise<Recorder> {
    let fh: FileHandle;
    try {
      await mkdir(dirname(o.file), { recursive: true, mode: 0o700 });
      fh = await open(o.file, 'wx', 0o600);
    } catch (err) {
      throw new FerryError('FERRY_STORE', `cannot create the recording ${o.file}: ${(err as Error).message}; check that the data dir is writable and has space`, { cause: err });
    }
    const r = new Recorder(o, fh);
    const header: CastHeader = { version: 2, width: o.width, height: o.height, timestamp: Math.floor(r.#startedAt / 1000) };
    const env = Object.fromEntries(Object.entries(o.env ?? {}).filter(([, v]) => typeof v === 'string' && v !== ''));
    if (Object.keys(env).length) header.env = env;
    if (o.title !== undefined) header.title = o.title;
    r.#queue(castHeaderLine(header), 0);
    await r.flush();
    return r;
  }

  /** Event bytes held in memory now, queued or being written (what the bound limits). */
  get bufferedBytes(): number { return this.#pendingBytes + this.#inFlightBytes; }

  /** Whether the source should hold off: more than the bound waits for the disk. */
  get paused(): boolean { return this.#paused; }

  /**
   * Records terminal output. Returns false when the buffer is over its bound, as a stream's
   * write() does: the source should pause until onPressure(false). Output is never dropped.
   */
  output(data: Uint8Array): boolean {
    this.#event('o', this.#out.decode(data, { stream: true }));
    return !this.#paused;
  }

  /** Records keystrokes, only when `recordInput` was asked for; otherwise does nothing. */
  input(data: Uint8Array): void {
    if (this.#o.recordInput === true) this.#event('i', this.#in.decode(data, { stream: true }));
  }

  /** Records a terminal resize. */
  resize(cols: number, rows: number): void { this.#event('r', castResizeData(cols, rows)); }

  /** Writes what is buffered now (the timer calls it; tests may too). Resolves once it is on disk. */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#pending.length === 0 || this.#failure) return;
    const text = this.#pending.join('');
    const events = this.#pendingEvents;
    this.#pending = [];
    this.#inFlightBytes = this.#pendingBytes;
    this.#pendingBytes = 0;
    this.#pendingEvents = 0;
    this.#writing = this.#write(Buffer.from(text, 'utf8'), events);
    try { await this.#writing; } finally { this.#writing = null; }
    if (this.#paused && this.#pending.length) await this.flush();
  }

  /**
   * Ends the recording: the decoders' last bytes, a final write, fsync, close. Rejects with
   * FERRY_STORE when a write failed (the file then holds what was written before).
   */
  async close(): Promise<RecordingSummary> {
    if (this.#closed) throw new FerryError('FERRY_STATE_INVALID', 'this recording is closed already');
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    // A multi-byte character cut by the end of the session becomes U+FFFD rather than being lost.
    const tailOut = this.#out.decode();
    if (tailOut) this.#queue(castEventLine(this.#seconds(), 'o', tailOut), 1);
    const tailIn = this.#in.decode();
    if (tailIn && this.#o.recordInput === true) this.#queue(castEventLine(this.#seconds(), 'i', tailIn), 1);
    const durationMs = this.#o.clock.now() - this.#startedAt;
    try {
      await this.flush();
      if (!this.#failure) await this.#fh.sync();
    } finally {
      await this.#fh.close();
    }
    if (this.#failure) throw new FerryError('FERRY_STORE', `the recording ${this.#o.file} could not be written (${this.#failure.message}): it holds what was written before`, { cause: this.#failure });
    return { bytes: this.#written.bytes, sha256: this.#hash.digest('hex'), durationMs, events: this.#written.events };
  }

  #seconds(): number { return (this.#o.clock.now() - this.#startedAt) / 1000; }

  #event(code: CastCode, data: string): void {
    if (this.#closed || this.#failure || data === '') return;
    this.#queue(castEventLine(this.#seconds(), code, data), 1);
    if (!this.#paused && this.#pendingBytes + this.#inFlightBytes > this.#max) {
      this.#paused = true;
      this.#o.onPressure?.(true);
      // Over the bound: write now rather than at the next tick, and keep writing until resumed.
      void this.flush();
    }
  }

  #queue(line: string, events: number): void {
    this.#pending.push(line);
    // Close enough to the UTF-8 length for a bound (exact for ASCII, which JSON escapes mostly are).
    this.#pendingBytes += line.length;
    this.#pendingEvents += events;
    if (this.#timer === null && !this.#closed) {
      this.#timer = this.#o.clock.setTimeout(() => {
        this.#timer = null;
        void this.flush();
      }, this.#o.flushIntervalMs ?? LIMITS.recordingFlushIntervalMs);
    }
  }

  async #write(buf: Buffer, events: number): Promise<void> {
    try {
      for (let off = 0; off < buf.length;) {
        const { bytesWritten } = await this.#fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      this.#hash.update(buf);
      this.#written = { events: this.#written.events + events, bytes: this.#written.bytes + buf.length };
      const now = this.#o.clock.now();
      if (now - this.#lastSync >= (this.#o.fsyncIntervalMs ?? LIMITS.recordingFsyncIntervalMs)) {
        this.#lastSync = now;
        await this.#fh.sync();
      }
    } catch (err) {
      this.#failure = err as Error;
      this.#pending = [];
      this.#pendingBytes = 0;
    } finally {
      this.#inFlightBytes = 0;
    }
    // Resume the source once half the bound is free again (or the recording failed: holding
    // a session still for a recording that cannot be written would only add to the harm).
    if (this.#paused && (this.#failure || this.#pendingBytes <= this.#max / 2)) {
      this.#paused = false;
      this.#o.onPressure?.(false);
    }
    if (!this.#failure) this.#o.onFlush?.(this.#written);
  }
}
