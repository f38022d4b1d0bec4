/**
 * The audit log's hash chain, as pure functions over rows: how a row's hash is made, and a
 * walk over the rows in id order that names the first one that is wrong. Every store (SQLite
 * today, PostgreSQL later) keeps the same columns and calls these, so that a log can be
 * verified the same way wherever it lives.
 */
import { createHash } from 'node:crypto';

/** The `prevHash` of the first row: there is nothing before it. */
export const GENESIS_HASH = '0'.repeat(64);

/** One audit row as the store keeps it. `detailText` is the stored JSON text, byte for byte; the hashes are null on a row written around the store. */
export interface ChainRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detailText: string;
  source: string;
  prevHash: string | null;
  hash: string | null;
}

/** The last row the store wrote, kept apart from the rows (in the same transaction) so that deleting the last row is noticed too. */
export interface ChainHead { id: number; hash: string }

/** What a walk over the chain found. On failure `badId` is the row that is wrong: the changed, inserted or missing one. */
export type ChainVerdict =
  | { ok: true; rows: number; head: string | null }
  | { ok: false; rows: number; badId: number; problem: string };

/** The hash of a row: SHA-256 over its content and the hash of the row before it. */
export function auditRowHash(row: Omit<ChainRow, 'hash'> & { prevHash: string }): string {
  const content = [row.id, row.at, row.actor, row.action, row.target, row.detailText, row.source, row.prevHash];
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

function missing(from: number, to: number): string {
  return from === to ? `row ${from} was deleted` : `rows ${from} to ${to} were deleted`;
}

/**
 * Walks `rows` (in the order the store returns them, which must be id order) and checks each
 * against the one before it and the last against `head`. Stops at the first problem.
 */
export function verifyChain(rows: Iterable<ChainRow>, head: ChainHead | null): ChainVerdict {
  let count = 0;
  let prev: { id: number; hash: string } = { id: 0, hash: GENESIS_HASH };
  const fail = (badId: number, problem: string): ChainVerdict => ({ ok: false, rows: count, badId, problem });
  for (const row of rows) {
    count++;
    if (row.id <= prev.id) return fail(row.id, `row ${row.id} comes after row ${prev.id}: the rows are out of order or repeated`);
    if (head === null) return fail(row.id, `row ${row.id} exists but the store never recorded a chain head: the head was deleted, or the rows were written around the store`);
    if (row.id > head.id) return fail(row.id, `row ${row.id} comes after the last row the store wrote (row ${head.id}): it was inserted around the store`);
    // A gap first: ids come from AUTOINCREMENT, which never skips one, so a gap is a deletion
    // even when the rows after it were rehashed to hide it.
    if (row.id !== prev.id + 1) {
      const what = prev.id === 0 ? `row ${row.id} is the first row` : `row ${row.id} follows row ${prev.id}`;
      return fail(prev.id + 1, `${what}: ${missing(prev.id + 1, row.id - 1)}`);
    }
    if (row.hash === null || row.prevHash === null) return fail(row.id, `row ${row.id} has no hash: it was inserted around the store`);
    if (auditRowHash({ ...row, prevHash: row.prevHash }) !== row.hash) return fail(row.id, `row ${row.id} was changed: its hash does not match its content`);
    if (row.prevHash !== prev.hash) {
      return fail(row.id, prev.id === 0
        ? `row ${row.id} does not start the chain: it was inserted or rewritten`
        : `row ${row.id} does not link to row ${prev.id}: row ${prev.id} was changed and rehashed, or row ${row.id} was inserted`);
    }
    prev = { id: row.id, hash: row.hash };
  }
  if (head === null) return { ok: true, rows: count, head: null };
  if (prev.id < head.id) {
    const what = prev.id === 0 ? 'the log is empty' : `the log ends at row ${prev.id}`;
    return fail(prev.id + 1, `${what} but the store wrote up to row ${head.id}: ${missing(prev.id + 1, head.id)}`);
  }
  if (prev.hash !== head.hash) return fail(prev.id, `row ${prev.id} does not match the chain head the store recorded: it was changed and rehashed`);
  return { ok: true, rows: count, head: prev.hash };
}
