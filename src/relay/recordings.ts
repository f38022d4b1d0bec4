/**
 * Recordings on the relay's side: where each .cast file goes in the data dir, its row in the
 * store, the audit row with its sha256 when it ends, and retention. The writing itself is
 * recording.ts's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../common/clock.ts';
import { FerryError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { Recorder, type RecorderOptions } from './recording.ts';
import type { RecordingRecord, Store } from './store.ts';

/** The folder of recordings, relative to the data dir. */
export const RECORDINGS_DIR = 'recordings';

/** Read size when hashing a recording file. */
const HASH_CHUNK = 1024 * 1024;

/** A recording's file, relative to the data dir: `recordings/YYYY/MM/DD/ID.cast`, by its UTC start day. */
export function recordingPath(id: string, startedAt: number): string {
  const d = new Date(startedAt).toISOString();
  return [RECORDINGS_DIR, d.slice(0, 4), d.slice(5, 7), d.slice(8, 10), `${id}.cast`].join('/');
}

/** Whether `id` has the shape `newRecordingId` gives (so it is safe in a path). */
export function isRecordingId(id: string): boolean { return /^[0-9a-f]{16}$/.test(id); }

/** A fresh recording id: 16 hex digits. */
export function newRecordingId(): string { return randomBytes(8).toString('hex'); }

/** Who and what a recording is of, and the terminal it starts with. */
export interface RecordingStart {
  /** The recording's id, when the caller chose it before (newRecordingId) to name it in the session's reach rows; else a fresh one. */
  id?: string;
  sessionId: string;
  device: string;
  user: string;
  login: string;
  width: number;
  height: number;
  env?: { TERM?: string; SHELL?: string };
  /** Record keystrokes too; off by default, since they capture passwords. */
  recordInput?: boolean;
}

/** What starting a recording needs from the relay. */
export interface RecordingDeps { store: Store; dataDir: string; clock: Clock }

/** A recording being written: feed its `recorder`, then `end` it once. */
export interface LiveRecording {
  readonly id: string;
  readonly recorder: Recorder;
  /** Closes the file and writes its size, sha256 and end to the store, with a `recording.end` audit row. */
  end(): Promise<RecordingRecord>;
}

/** Creates the file and its row and returns the recorder. `onPressure` is the recorder's (pause the terminal's source). */
export async function startRecording(deps: RecordingDeps, s: RecordingStart, extra: Pick<RecorderOptions, 'onPressure' | 'onFlush'> = {}): Promise<LiveRecording> {
  if (s.id !== undefined && !isRecordingId(s.id)) throw new FerryError('FERRY_INTERNAL', `'${s.id}' is not a recording id (16 hex digits from newRecordingId)`);
  const id = s.id ?? newRecordingId();
  const startedAt = deps.clock.now();
  const path = recordingPath(id, startedAt);
  const recorder = await Recorder.open({
    file: join(deps.dataDir, path), width: s.width, height: s.height, env: s.env, recordInput: s.recordInput,
    title: `${s.login}@${s.device} (${s.user})`, clock: deps.clock, ...extra,
  });
  deps.store.addRecording({ id, sessionId: s.sessionId, device: s.device, user: s.user, login: s.login, startedAt, path });
  let ended: Promise<RecordingRecord> | null = null;
  return {
    id, recorder,
    end() {
      ended ??= (async () => {
        const summary = await recorder.close();
        const endedAt = deps.clock.now();
        deps.store.transaction(() => {
          deps.store.finishRecording(id, { endedAt, bytes: summary.bytes, sha256: summary.sha256 });
          deps.store.audit({
            at: endedAt, actor: s.user, action: 'recording.end', target: s.device,
            detail: { recording: id, session: s.sessionId, device: s.device, user: s.user, login: s.login, path, sha256: summary.sha256, bytes: summary.bytes, durationMs: summary.durationMs },
          });
        });
        return deps.store.getRecording(id)!;
      })();
      return ended;
    },
  };
}

/** The sha256 and size of a file as it is on disk now, or null when it is gone. */
export function hashFile(file: string): { sha256: string; bytes: number } | null {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch { return null; }
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(HASH_CHUNK);
    let bytes = 0;
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
    return { sha256: hash.digest('hex'), bytes };
  } finally {
    closeSync(fd);
  }
}

/**
 * At relay start: a recording without an end was cut by a crash (none survives a restart).
 * Each is closed as it is on disk, readable up to its last flush, with its sha256 and size
 * audited as `recording.end` with `crashed: true`. Returns how many.
 */
export function closeCrashedRecordings(deps: { store: Store; dataDir: string; now: number }): number {
  let n = 0;
  for (const r of deps.store.listRecordings({ unfinished: true, limit: Number.MAX_SAFE_INTEGER })) {
    const file = join(deps.dataDir, r.path);
    const found = hashFile(file) ?? { sha256: createHash('sha256').digest('hex'), bytes: 0 };
    let endedAt = deps.now;
    try { endedAt = Math.max(r.startedAt, statSync(file).mtimeMs); } catch { /* gone: ended now, with 0 bytes */ }
    endedAt = Math.round(endedAt);
    deps.store.transaction(() => {
      deps.store.finishRecording(r.id, { endedAt, ...found });
      deps.store.audit({
        at: deps.now, actor: 'relay', action: 'recording.end', target: r.device,
        detail: { recording: r.id, session: r.sessionId, device: r.device, user: r.user, login: r.login, path: r.path, ...found, durationMs: endedAt - r.startedAt, crashed: true },
      });
    });
    n++;
  }
  return n;
}

/** Whether `r` is past its retention at `now` (pure): it ended more than `retentionMs` ago; never when that is 0. */
export function isExpired(r: RecordingRecord, now: number, retentionMs: number): boolean {
  return retentionMs > 0 && r.endedAt !== null && r.endedAt < now - retentionMs;
}

/**
 * Deletes the recordings past their retention, file and row, each with a `recording.expire`
 * audit row that holds the sha256 of the file as it was removed. Returns how many.
 */
export function expireRecordings(deps: { store: Store; dataDir: string; now: number; retentionMs: number }): number {
  if (deps.retentionMs <= 0) return 0;
  const old = deps.store.listRecordings({ endedBefore: deps.now - deps.retentionMs, limit: Number.MAX_SAFE_INTEGER });
  for (const r of old.filter((x) => isExpired(x, deps.now, deps.retentionMs))) {
    const file = join(deps.dataDir, r.path);
    const found = hashFile(file);
    // The row and its audit row first, in one transaction; then the file. A crash in between
    // leaves an orphan file, never a row that points at nothing.
    deps.store.transaction(() => {
      deps.store.removeRecording(r.id);
      deps.store.audit({
        at: deps.now, actor: 'relay', action: 'recording.expire', target: r.device,
        detail: { recording: r.id, session: r.sessionId, device: r.device, user: r.user, path: r.path, sha256: found?.sha256 ?? null, bytes: found?.bytes ?? null, recordedSha256: r.sha256, ...(found ? {} : { missing: true }) },
      });
    });
    rmSync(file, { force: true });
  }
  return old.length;
}

/** Runs `expireRecordings` now and then every `sweepMs` until stopped. */
export function startRetention(deps: { store: Store; dataDir: string; clock: Clock; retentionMs: number; sweepMs: number; log: Logger }): { stop(): void } {
  let timer: TimerHandle | null = null;
  let stopped = false;
  const sweep = () => {
    try {
      const n = expireRecordings({ ...deps, now: deps.clock.now() });
      if (n > 0) deps.log.info({ recordings: n }, 'removed recordings past their retention');
    } catch (err) {
      deps.log.error({ err: (err as Error).message }, 'removing old recordings failed; will try again at the next sweep');
    }
    if (!stopped) timer = deps.clock.setTimeout(sweep, deps.sweepMs);
  };
  if (deps.retentionMs > 0) sweep();
  return { stop() { stopped = true; timer?.cancel(); } };
}

/** A recording's row, or FERRY_NOT_FOUND naming how to list them. */
export function recordingOrThrow(store: Store, id: string): RecordingRecord {
  const r = isRecordingId(id) ? store.getRecording(id) : null;
  if (!r) throw new FerryError('FERRY_NOT_FOUND', `there is no recording '${id}'; 'recordings' lists them`);
  return r;
}
