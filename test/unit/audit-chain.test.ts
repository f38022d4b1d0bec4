// Covers src/relay/audit-chain.ts: the row hash and the walk that names the first bad row, for each kind of tampering.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { auditRowHash, GENESIS_HASH, verifyChain, type ChainHead, type ChainRow } from '../../src/relay/audit-chain.ts';

const AT = Date.UTC(2026, 0, 31, 12, 0, 0);

/** A well-formed chain of `n` rows with ids 1..n, and its head. */
function chain(n: number): { rows: ChainRow[]; head: ChainHead } {
  const rows: ChainRow[] = [];
  let prevHash = GENESIS_HASH;
  for (let id = 1; id <= n; id++) {
    const row = { id, at: AT + id, actor: id % 2 ? 'alice' : 'bob', action: 'device.approve', target: `d${id}`, detailText: JSON.stringify({ n: id }), source: 'relay', prevHash };
    const hash = auditRowHash(row);
    rows.push({ ...row, hash });
    prevHash = hash;
  }
  return { rows, head: { id: n, hash: prevHash } };
}

/** Recomputes the hashes from row `from` on, as someone who knows the algorithm would to hide a change. */
function rehash(rows: ChainRow[], from: number): void {
  for (let i = from; i < rows.length; i++) {
    const prevHash = i === 0 ? GENESIS_HASH : rows[i - 1]!.hash!;
    rows[i] = { ...rows[i]!, prevHash, hash: auditRowHash({ ...rows[i]!, prevHash }) };
  }
}

function fails(rows: ChainRow[], head: ChainHead | null, badId: number, problem: RegExp): void {
  const v = verifyChain(rows, head);
  assert.equal(v.ok, false, 'the walk should fail');
  if (v.ok) return;
  assert.equal(v.badId, badId, v.problem);
  assert.match(v.problem, problem);
}

describe('auditRowHash', () => {
  test('is SHA-256 over the JSON array of the content and the previous hash', () => {
    const row = { id: 7, at: AT, actor: 'alice', action: 'user.add', target: null, detailText: '{"keys":[]}', source: 'relay', prevHash: GENESIS_HASH };
    const expected = createHash('sha256').update(JSON.stringify([7, AT, 'alice', 'user.add', null, '{"keys":[]}', 'relay', GENESIS_HASH])).digest('hex');
    assert.equal(auditRowHash(row), expected);
    assert.match(expected, /^[0-9a-f]{64}$/);
  });

  test('every field counts, and a null target differs from the string "null"', () => {
    const base = { id: 1, at: AT, actor: 'a', action: 'x', target: null as string | null, detailText: '{}', source: 'relay', prevHash: GENESIS_HASH };
    const h = auditRowHash(base);
    const variants = [{ id: 2 }, { at: AT + 1 }, { actor: 'b' }, { action: 'y' }, { target: 'null' }, { detailText: '{ }' }, { source: 'device' }, { prevHash: '1'.repeat(64) }];
    for (const v of variants) assert.notEqual(auditRowHash({ ...base, ...v }), h, JSON.stringify(v));
  });
});

describe('verifyChain', () => {
  test('an intact chain passes and reports its head; an empty log without a head passes', () => {
    const { rows, head } = chain(5);
    assert.deepEqual(verifyChain(rows, head), { ok: true, rows: 5, head: head.hash });
    assert.deepEqual(verifyChain([], null), { ok: true, rows: 0, head: null });
  });

  test('a changed row: its hash does not match its content', () => {
    const { rows, head } = chain(5);
    rows[2] = { ...rows[2]!, detailText: '{"n":99}' };
    fails(rows, head, 3, /^row 3 was changed: its hash does not match its content$/);
  });

  test('a changed row whose hash was recomputed: the next row no longer links to it', () => {
    const { rows, head } = chain(5);
    rows[2] = { ...rows[2]!, actor: 'mallory' };
    rows[2] = { ...rows[2], hash: auditRowHash({ ...rows[2], prevHash: rows[2].prevHash! }) };
    fails(rows, head, 4, /^row 4 does not link to row 3: row 3 was changed and rehashed, or row 4 was inserted$/);
  });

  test('a deleted middle row, even with every later hash recomputed', () => {
    const { rows, head } = chain(5);
    rows.splice(2, 1);
    fails(rows, head, 3, /^row 4 follows row 2: row 3 was deleted$/);
    rehash(rows, 2);
    fails(rows, { id: 5, hash: rows[3]!.hash! }, 3, /^row 4 follows row 2: row 3 was deleted$/);
  });

  test('several deleted rows in a row, and deleted first rows', () => {
    const { rows, head } = chain(6);
    fails([...rows.slice(0, 1), ...rows.slice(4)], head, 2, /^row 5 follows row 1: rows 2 to 4 were deleted$/);
    fails(rows.slice(2), head, 1, /^row 3 is the first row: rows 1 to 2 were deleted$/);
  });

  test('the deleted last row, found by the head', () => {
    const { rows, head } = chain(5);
    fails(rows.slice(0, 4), head, 5, /^the log ends at row 4 but the store wrote up to row 5: row 5 was deleted$/);
    fails([], head, 1, /^the log is empty but the store wrote up to row 5: rows 1 to 5 were deleted$/);
  });

  test('the last row changed and rehashed: it no longer matches the head', () => {
    const { rows, head } = chain(3);
    rows[2] = { ...rows[2]!, target: 'other' };
    rehash(rows, 2);
    fails(rows, head, 3, /^row 3 does not match the chain head the store recorded: it was changed and rehashed$/);
  });

  test('a row inserted after the head, even one correctly chained', () => {
    const { rows, head } = chain(3);
    const extra = { id: 4, at: AT, actor: 'mallory', action: 'user.add', target: null, detailText: '{}', source: 'relay', prevHash: head.hash };
    fails([...rows, { ...extra, hash: auditRowHash(extra) }], head, 4, /^row 4 comes after the last row the store wrote \(row 3\): it was inserted around the store$/);
  });

  test('a row inserted without hashes inside the head (its id taken from a deleted row)', () => {
    const { rows, head } = chain(3);
    rows[1] = { ...rows[1]!, actor: 'mallory', prevHash: null, hash: null };
    fails(rows, head, 2, /^row 2 has no hash: it was inserted around the store$/);
  });

  test('a first row that does not start from the genesis hash', () => {
    const { rows, head } = chain(2);
    rows[0] = { ...rows[0]!, prevHash: '1'.repeat(64) };
    rows[0] = { ...rows[0], hash: auditRowHash({ ...rows[0], prevHash: rows[0].prevHash! }) };
    fails(rows, head, 1, /^row 1 does not start the chain: it was inserted or rewritten$/);
  });

  test('reordered rows: swapped contents show as a change, a sequence out of id order as such', () => {
    const { rows, head } = chain(4);
    // In a table the id is the order, so reordering means moving content to other ids; the
    // hash covers the id.
    const [two, three] = [rows[1]!, rows[2]!];
    fails([rows[0]!, { ...three, id: 2 }, { ...two, id: 3 }, rows[3]!], head, 2, /^row 2 was changed: its hash does not match its content$/);
    fails([rows[0]!, rows[1]!, rows[1]!, rows[2]!], head, 2, /^row 2 comes after row 2: the rows are out of order or repeated$/);
  });

  test('rows without a head: the head was deleted', () => {
    const { rows } = chain(2);
    fails(rows, null, 1, /^row 1 exists but the store never recorded a chain head/);
  });

  test('rows counts what was walked up to the problem', () => {
    const { rows, head } = chain(5);
    rows[3] = { ...rows[3]!, at: 0 };
    const v = verifyChain(rows, head);
    assert.equal(v.ok, false);
    assert.equal(v.rows, 4);
  });
});
