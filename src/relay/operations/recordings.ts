/** Session recordings: list them, and read one's row and its .cast file. */
import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { recordingOrThrow } from '../recordings.ts';
import type { RecordingRecord } from '../store.ts';
import { iso, type Operation, type OperationContext } from './operation.ts';

/** Read size when streaming a recording out. */
const CAT_CHUNK = 64 * 1024;

/** Which recordings to list; `limit` at most LIMITS.recordingsListLimit (the default). */
export interface ListRecordingsInput { device?: string; user?: string; limit?: number }

/** A recording as shown: times as ISO text, and its length once it has ended. */
export type RecordingView = Omit<RecordingRecord, 'startedAt' | 'endedAt'> & { startedAt: string; endedAt: string | null; durationMs: number | null };

/** One recording for output. */
export function recordingView(r: RecordingRecord): RecordingView {
  return { ...r, startedAt: iso(r.startedAt)!, endedAt: iso(r.endedAt), durationMs: r.endedAt === null ? null : r.endedAt - r.startedAt };
}

/** The newest recordings that match, newest first. */
export const listRecordings: Operation<ListRecordingsInput, RecordingView[]> = {
  name: 'recordings.list',
  action: 'recording.read',
  run(ctx, _principal, input) {
    return ctx.store.listRecordings({ device: input.device, user: input.user, limit: Math.min(input.limit ?? LIMITS.recordingsListLimit, LIMITS.recordingsListLimit) }).map(recordingView);
  },
};

/** One recording's row, without its file (the console's recording page shows it beside the player). */
export const showRecording: Operation<{ id: string }, RecordingView> = {
  name: 'recordings.show',
  action: 'recording.read',
  targetOf: (input) => input.id,
  run(ctx, _principal, { id }) {
    return recordingView(recordingOrThrow(ctx.store, id));
  },
};

/** One recording's row and its file's text, read in chunks as it is consumed (a recording may be larger than memory). */
export const getRecording: Operation<{ id: string }, { recording: RecordingView; cast: Iterable<string> }> = {
  name: 'recordings.get',
  action: 'recording.read',
  targetOf: (input) => input.id,
  run(ctx, _principal, { id }) {
    const r = recordingOrThrow(ctx.store, id);
    const file = join(dataDirOf(ctx), r.path);
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new FerryError('FERRY_NOT_FOUND', `recording '${id}' has no file at ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}): it was removed around the relay`, { cause: err });
    }
    // Opened when the first chunk is read, not here: a reader that goes away before that
    // (a browser that aborts) would otherwise leave the descriptor open.
    return { recording: recordingView(r), cast: readText(file) };
  },
};

function dataDirOf(ctx: OperationContext): string {
  if (ctx.dataDir === undefined) throw new FerryError('FERRY_CONFIG_INVALID', 'this front end does not know the data dir, so it cannot read recordings');
  return ctx.dataDir;
}

/** The file's text, chunk by chunk; a UTF-8 character cut by a chunk's end is kept for the next. */
function* readText(file: string): IterableIterator<string> {
  const fd = openSync(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.alloc(CAT_CHUNK);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      const text = decoder.write(buf.subarray(0, n));
      if (text) yield text;
    }
    const rest = decoder.end();
    if (rest) yield rest;
  } finally {
    closeSync(fd);
  }
}
