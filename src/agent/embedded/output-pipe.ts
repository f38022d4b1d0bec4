/**
 * A real pipe (a FIFO, unlinked at once) for a program's stdout. Node gives a child's stdio
 * as socket pairs, and closing a socket pair's reader while data is waiting gives the writer
 * ECONNRESET ("Connection reset by peer" printed, exit 1) instead of the SIGPIPE that ends
 * a program silently, as with sshd (whose sessions use pipes) when the client's reader goes.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Both ends of a pipe: `childEnd` goes into spawn's stdio (close it after spawning), `reader` is ours. */
export interface OutputPipe { childEnd: number; reader: Socket }

/** How long making the FIFO may take (mkfifo from coreutils). */
const MKFIFO_TIMEOUT_MS = 2_000;

/** Makes a pipe, or resolves to null when it cannot (then the caller uses Node's socket pair). */
export async function openOutputPipe(): Promise<OutputPipe | null> {
  // A private directory (mode 0700), so that nobody else can open the FIFO in the moment it has a name.
  let dir: string | null = null;
  let readFd: number | null = null;
  try {
    dir = mkdtempSync(join(tmpdir(), 'ferry-out-'));
    const path = join(dir, 'stdout');
    await new Promise<void>((resolve, reject) => {
      execFile('mkfifo', ['-m', '600', path], { timeout: MKFIFO_TIMEOUT_MS }, (err) => (err ? reject(err) : resolve()));
    });
    // The reader first and non-blocking: opening a FIFO's writer blocks until it has a reader.
    readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const childEnd = openSync(path, constants.O_WRONLY);
    return { childEnd, reader: new Socket({ fd: readFd, readable: true, writable: false }) };
  } catch {
    if (readFd !== null) closeSync(readFd);
    return null;
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

/** Closes our copy of the child's end once the child has it. */
export function releaseChildEnd(pipe: OutputPipe): void {
  try { closeSync(pipe.childEnd); } catch { /* already closed */ }
}
