/**
 * One relay per data dir. Two relays on one store would each mark the other's devices offline
 * at start and rewrite relay.json, so the relay holds an exclusive lock on the data dir while
 * it runs (docs/decisions.md explains the choice of lock).
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.ts';

/** The lock file inside a data dir: an SQLite database that holds an exclusive transaction open. */
export const lockPath = (dataDir: string): string => join(dataDir, 'relay.lock');
/** Who holds the lock: written by the holder once it has it, read by the relay that is refused. */
export const lockHolderPath = (dataDir: string): string => join(dataDir, 'relay.pid');

/** A held data-dir lock. */
export interface DataDirLock {
  /** Gives the lock up (stopping the relay); the kernel does the same when the process dies. */
  release(): void;
}

/** What the holder writes about itself. */
interface Holder { pid: number; startedAt: string }

/**
 * Takes the data dir's lock or throws FERRY_CONFLICT naming the process that holds it.
 * SQLite's unix VFS takes the lock with fcntl(), which the kernel releases when the holder
 * exits for any reason, kill -9 included, so a crash never leaves a stale lock behind.
 */
export function lockDataDir(dataDir: string, now: number): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = lockPath(dataDir);
  let db: Database.Database;
  try {
    // Created empty at 0600 here, so that SQLite does not create it with the umask's mode.
    writeFileSync(file, '', { flag: 'a', mode: 0o600 });
    // timeout 0: a lock held by another relay is an answer now, not something to wait for.
    db = new Database(file, { timeout: 0 });
  } catch (err) {
    throw new FerryError('FERRY_STORE', `cannot open the lock file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The rollback journal (not WAL) makes BEGIN EXCLUSIVE lock the file itself against every
    // other connection, readers too, until this one ends the transaction or dies.
    db.pragma('journal_mode = DELETE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') {
      throw new FerryError('FERRY_STORE', `cannot lock ${file}: ${(err as Error).message}`, { cause: err });
    }
    throw new FerryError('FERRY_CONFLICT', `${dataDir} is in use by another relay (${describeHolder(dataDir)}): stop that relay first, or give this one its own --data-dir`);
  }
  const holder: Holder = { pid: process.pid, startedAt: new Date(now).toISOString() };
  writeFileSync(lockHolderPath(dataDir), JSON.stringify(holder) + '\n', { mode: 0o600 });
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}

/** "PID 1234, started …" from the holder's file, or what is known when it is not there yet. */
function describeHolder(dataDir: string): string {
  try {
    const h = JSON.parse(readFileSync(lockHolderPath(dataDir), 'utf8')) as Partial<Holder>;
    if (typeof h.pid === 'number') return `PID ${h.pid}${typeof h.startedAt === 'string' ? `, started ${h.startedAt}` : ''}`;
  } catch {}
  // The holder writes its file right after it takes the lock; this one looked in between.
  return 'a process that is just starting';
}
