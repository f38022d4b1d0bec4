// Covers src/relay/sqlite-store.ts on a temp file: migrations, users and keys, token redemption, presence, audit, change counter.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, afterEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/common/errors.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import { writeOldStore } from '../helpers/store-schema-4.ts';
import type { Store, TokenRecord } from '../../src/relay/store.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
const newFile = () => join(dir, `store-${++fileCount}.db`);

const key = (n: string) => ({ fingerprint: `SHA256:${n}`, line: `ssh-ed25519 AAAA${n}` });
const hash = (secret: string) => createHash('sha256').update(secret).digest();

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isFerryError(err), `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

let store: Store;
let file: string;
beforeEach(() => { file = newFile(); store = openSqliteStore(file); });
afterEach(() => store.close());

function token(overrides: Partial<TokenRecord> = {}, secret = 'secret-1'): TokenRecord {
  const t: TokenRecord = { id: 'tok1', createdBy: 'admin', createdAt: NOW, expiresAt: NOW + 3_600_000, usesLeft: 1, name: null, labels: {}, approve: false, ...overrides };
  store.createToken(t, hash(secret));
  return t;
}

const redeem = (overrides: Partial<Parameters<Store['redeemToken']>[0]> = {}) => store.redeemToken({
  id: 'tok1', secretHash: hash('secret-1'), requestedName: null, fallbackName: 'host', keyFingerprint: 'SHA256:dev1', keyLine: 'ssh-ed25519 AAAAdev1', now: NOW + 1000, ...overrides,
});

describe('opening', () => {
  test('migrations set user_version and the journal is WAL', () => {
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), 7);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally { db.close(); }
  });

  test('reopening keeps the data and does not migrate again', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.close();
    store = openSqliteStore(file);
    assert.equal(store.countUsers(), 1);
    assert.deepEqual(store.getUser('alice')?.roles, ['admin']);
  });

  test('a schema 3 store is migrated with its tokens usable', () => {
    store.close();
    // What a relay before migration 4 left: no revoked_at column, user_version 3.
    const db = writeOldStore(file = newFile(), 3);
    db.prepare(`INSERT INTO tokens (id, secret_hash, created_by, created_at, expires_at, uses_left, name, labels, approve)
      VALUES ('kept', ?, 'admin', ?, ?, 1, NULL, '{}', 0)`).run(hash('s'), NOW, NOW + 1000);
    db.close();
    store = openSqliteStore(file);
    assert.deepEqual(store.listTokens().map((t) => [t.id, t.revokedAt]), [['kept', null]]);
    assert.equal(store.revokeToken('kept', NOW), true);
  });

  test('a store from a newer ferry is refused', () => {
    store.close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    rejects(() => openSqliteStore(file), 'FERRY_STORE', /written by a newer ferry \(schema 99, this one knows 7\); upgrade ferry/);
    store = openSqliteStore(newFile());
  });

  test('a path that cannot be opened is a FERRY_STORE error', () => {
    rejects(() => openSqliteStore(join(dir, 'no', 'such', 'dir', 'x.db')), 'FERRY_STORE', /^cannot open the store /);
  });
});

describe('migration 5: roles and the audit chain, from a schema 4 store', () => {
  /** A store as a relay before roles left it: an admin and an operator with keys, a device, five audit rows. */
  function oldStore(): string {
    const f = newFile();
    const db = writeOldStore(f, 4);
    const user = db.prepare('INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)');
    const userKey = db.prepare('INSERT INTO user_keys (fingerprint, user_name, line) VALUES (?, ?, ?)');
    user.run('alice', 'admin', NOW - 100);
    user.run('bob', 'operator', NOW - 50);
    userKey.run('SHA256:a', 'alice', 'ssh-ed25519 AAAAa');
    userKey.run('SHA256:b1', 'bob', 'ssh-ed25519 AAAAb1');
    userKey.run('SHA256:b2', 'bob', 'ssh-ed25519 AAAAb2');
    db.prepare(`INSERT INTO devices (name, status, key_fingerprint, key_line, labels, created_at) VALUES ('cam', 'approved', 'SHA256:dev', 'ssh-ed25519 AAAAdev', '{"site":"berlin"}', ?)`).run(NOW);
    const audit = db.prepare('INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
    for (let i = 1; i <= 5; i++) audit.run(NOW + i, 'alice', 'device.approve', 'cam', JSON.stringify({ n: i }));
    db.close();
    return f;
  }

  function tamper(f: string, sql: string): void {
    const db = new Database(f);
    try { db.exec(sql); } finally { db.close(); }
  }

  function badRow(f: string, badId: number, problem: RegExp): void {
    const s = openSqliteStore(f);
    try {
      const v = s.verifyAudit();
      assert.equal(v.ok, false, 'the tampering should be found');
      if (!v.ok) {
        assert.equal(v.badId, badId, v.problem);
        assert.match(v.problem, problem);
      }
    } finally { s.close(); }
  }

  test('users keep their keys and get the role they had; the audit rows are chained and verify', () => {
    store.close();
    store = openSqliteStore(file = oldStore());
    assert.deepEqual(store.listUsers(), [
      { name: 'alice', roles: ['admin'], createdAt: NOW - 100, keys: [{ fingerprint: 'SHA256:a', line: 'ssh-ed25519 AAAAa' }] },
      { name: 'bob', roles: ['operator'], createdAt: NOW - 50, keys: [{ fingerprint: 'SHA256:b1', line: 'ssh-ed25519 AAAAb1' }, { fingerprint: 'SHA256:b2', line: 'ssh-ed25519 AAAAb2' }] },
    ]);
    assert.deepEqual(store.listRoles().map((r) => [r.name, r.actions]), [['admin', ['*']], ['operator', []]]);
    assert.equal(store.getDevice('cam')?.labels.site, 'berlin');
    const audit = [...store.iterateAudit()];
    assert.deepEqual(audit.map((a) => [a.id, a.source, a.detail]), [1, 2, 3, 4, 5].map((n) => [n, 'relay', { n }]));
    assert.deepEqual(store.verifyAudit(), { ok: true, rows: 5, head: audit[4]!.hash });
    const next = store.audit({ at: NOW + 6, actor: 'relay', action: 'user.add', target: 'carol', detail: {} });
    assert.equal(next.prevHash, audit[4]!.hash, 'new rows chain on from the migrated ones');
    assert.equal(store.verifyAudit().ok, true);

    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), 7);
      assert.deepEqual((db.pragma('table_info(users)') as { name: string }[]).map((c) => c.name), ['name', 'created_at'], 'users.role is gone');
    } finally { db.close(); }
    // Foreign keys are on again after the migration: removing a user takes its keys and bindings.
    assert.equal(store.removeUser('bob'), true);
    assert.equal(store.getUserByKey('SHA256:b1'), null);
    store.addUser('bob', [], [key('b1')], NOW);
    assert.deepEqual(store.getUser('bob')?.roles, []);
  });

  test('a schema 4 store without audit rows has no head and verifies', () => {
    store.close();
    const f = newFile();
    writeOldStore(f, 4).close();
    store = openSqliteStore(f);
    assert.deepEqual(store.verifyAudit(), { ok: true, rows: 0, head: null });
  });

  test("editing one row's detail with sqlite is found, naming the row", () => {
    const f = oldStore();
    openSqliteStore(f).close();
    tamper(f, `UPDATE audit SET detail = '{"n":33}' WHERE id = 3`);
    badRow(f, 3, /^row 3 was changed: its hash does not match its content$/);
  });

  test('deleting a middle row is found, even after the relay wrote more rows', () => {
    const f = oldStore();
    openSqliteStore(f).close();
    tamper(f, 'DELETE FROM audit WHERE id = 3');
    badRow(f, 3, /^row 4 follows row 2: row 3 was deleted$/);
    const s = openSqliteStore(f);
    s.audit({ at: NOW, actor: 'x', action: 'y', target: null, detail: {} });
    s.close();
    badRow(f, 3, /row 3 was deleted/);
  });

  test('deleting the last row is found by the head', () => {
    const f = oldStore();
    openSqliteStore(f).close();
    tamper(f, 'DELETE FROM audit WHERE id = 5');
    badRow(f, 5, /^the log ends at row 4 but the store wrote up to row 5: row 5 was deleted$/);
  });

  test('a deleted or garbled chain head is found', () => {
    const f = oldStore();
    openSqliteStore(f).close();
    tamper(f, `UPDATE meta SET value = 'x' WHERE key = 'audit_head'`);
    badRow(f, 0, /^the chain head \(meta 'audit_head'\) is not an id and a hash: it was changed around the store$/);
    tamper(f, `DELETE FROM meta WHERE key = 'audit_head'`);
    badRow(f, 1, /^row 1 exists but the store never recorded a chain head/);
  });

  test('inserting a row with sqlite is found, naming the row', () => {
    const f = oldStore();
    openSqliteStore(f).close();
    tamper(f, `INSERT INTO audit (at, actor, action, target, detail) VALUES (${NOW}, 'mallory', 'user.add', 'mallory', '{}')`);
    badRow(f, 6, /^row 6 comes after the last row the store wrote \(row 5\): it was inserted around the store$/);
  });
});

describe('users', () => {
  test('add, get, list, count and remove', () => {
    assert.equal(store.countUsers(), 0);
    store.addUser('bob', ['operator'], [key('b2'), key('b1')], NOW);
    store.addUser('alice', ['admin'], [key('a')], NOW + 1);
    assert.equal(store.countUsers(), 2);
    assert.deepEqual(store.getUser('bob'), { name: 'bob', roles: ['operator'], createdAt: NOW, keys: [key('b1'), key('b2')] });
    assert.deepEqual(store.listUsers().map((u) => u.name), ['alice', 'bob']);
    assert.equal(store.getUser('carol'), null);
    assert.equal(store.removeUser('bob'), true);
    assert.equal(store.removeUser('bob'), false);
    assert.equal(store.getUser('bob'), null);
    // The keys went with the user: another user may now have them.
    store.addUser('carol', ['operator'], [key('b1')], NOW);
    assert.deepEqual(store.getUser('carol')?.keys, [key('b1')]);
  });

  test('a second user with the same name is a conflict', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    rejects(() => store.addUser('alice', ['operator'], [key('z')], NOW), 'FERRY_CONFLICT', /^user 'alice' exists already; remove it first with 'user rm alice'$/);
    assert.deepEqual(store.getUser('alice')?.roles, ['admin']);
  });

  test("another user's key is a conflict, and nothing of the new user is kept", () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    rejects(() => store.addUser('bob', ['operator'], [key('b'), key('a')], NOW), 'FERRY_CONFLICT', /^key SHA256:a belongs to user 'alice' already/);
    assert.equal(store.getUser('bob'), null, 'the transaction rolled back');
    store.addUser('bob', ['operator'], [key('b')], NOW);
    assert.equal(store.getUser('bob')?.keys.length, 1, 'key b was not left behind either');
  });

  test("a device's key cannot become an operator key, nor the other way round", () => {
    token();
    redeem();
    rejects(() => store.addUser('bob', ['operator'], [{ fingerprint: 'SHA256:dev1', line: 'x' }], NOW), 'FERRY_CONFLICT', /is a device's key: operators and devices need different keys/);
    store.addUser('alice', ['admin'], [key('a')], NOW);
    token({ id: 'tok2' });
    rejects(() => redeem({ id: 'tok2', keyFingerprint: 'SHA256:a', fallbackName: 'other' }), 'FERRY_CONFLICT', /^this agent key is an operator key/);
  });
});

describe('roles and bindings', () => {
  const berlin = { name: 'berlin', devices: ['site=berlin'], logins: ['pi'], forwards: [], actions: ['device.list'] };

  test('a new store has the built-in admin and operator roles', () => {
    assert.deepEqual(store.listRoles().map(({ createdAt: _c, updatedAt: _u, ...r }) => r), [
      { name: 'admin', devices: ['*'], logins: ['*'], forwards: ['*'], actions: ['*'] },
      { name: 'operator', devices: ['*'], logins: ['*'], forwards: ['*'], actions: [] },
    ]);
  });

  test('add, get, update, list and remove a role', () => {
    store.addRole(berlin, NOW);
    assert.deepEqual(store.getRole('berlin'), { ...berlin, createdAt: NOW, updatedAt: NOW });
    rejects(() => store.addRole({ ...berlin, logins: ['*'] }, NOW), 'FERRY_CONFLICT', /^role 'berlin' exists already; change it with 'role edit berlin'$/);
    assert.deepEqual(store.getRole('berlin')?.logins, ['pi'], 'the conflict changed nothing');
    assert.equal(store.updateRole({ ...berlin, devices: ['site=berlin', 'key'], forwards: ['127.0.0.1:80'] }, NOW + 5), true);
    assert.deepEqual(store.getRole('berlin'), { ...berlin, devices: ['site=berlin', 'key'], forwards: ['127.0.0.1:80'], createdAt: NOW, updatedAt: NOW + 5 });
    assert.equal(store.updateRole({ ...berlin, name: 'nope' }, NOW), false);
    assert.deepEqual(store.listRoles().map((r) => r.name), ['admin', 'berlin', 'operator']);
    assert.equal(store.removeRole('berlin'), true);
    assert.equal(store.removeRole('berlin'), false);
    assert.equal(store.getRole('berlin'), null);
  });

  test('users are bound to roles; an unknown role is NOT_FOUND and keeps nothing', () => {
    store.addRole(berlin, NOW);
    store.addUser('bob', ['operator', 'berlin', 'berlin'], [key('b')], NOW);
    assert.deepEqual(store.getUser('bob')?.roles, ['berlin', 'operator'], 'sorted, once each');
    rejects(() => store.addUser('carol', ['operator', 'root'], [key('c')], NOW), 'FERRY_NOT_FOUND', /^there is no role 'root'; 'role ls' lists them$/);
    assert.equal(store.getUser('carol'), null);
    assert.equal(store.getUserByKey('SHA256:c'), null, 'nor its key');
    store.addUser('dave', [], [key('d')], NOW);
    assert.deepEqual(store.getUser('dave')?.roles, [], 'a user may have no role');
  });

  test('setUserRoles replaces the bindings; false for no user; an unknown role changes nothing', () => {
    store.addRole(berlin, NOW);
    store.addUser('bob', ['operator'], [key('b')], NOW);
    assert.equal(store.setUserRoles('bob', ['berlin', 'admin']), true);
    assert.deepEqual(store.getUser('bob')?.roles, ['admin', 'berlin']);
    rejects(() => store.setUserRoles('bob', ['operator', 'root']), 'FERRY_NOT_FOUND', /no role 'root'/);
    assert.deepEqual(store.getUser('bob')?.roles, ['admin', 'berlin'], 'rolled back');
    assert.equal(store.setUserRoles('zed', ['operator']), false);
    assert.equal(store.setUserRoles('bob', []), true);
    assert.deepEqual(store.getUser('bob')?.roles, []);
  });

  test('removing a role removes its bindings, not the users; removing a user removes theirs', () => {
    store.addRole(berlin, NOW);
    store.addUser('bob', ['operator', 'berlin'], [key('b')], NOW);
    store.addUser('carol', ['berlin'], [key('c')], NOW);
    assert.equal(store.removeRole('berlin'), true);
    assert.deepEqual(store.listUsers().map((u) => [u.name, u.roles]), [['bob', ['operator']], ['carol', []]]);
    store.addRole(berlin, NOW);
    assert.deepEqual(store.getUser('carol')?.roles, [], 'a new role of the same name is not bound to anyone');
    store.setUserRoles('carol', ['berlin']);
    store.removeUser('carol');
    store.addUser('carol', [], [key('c')], NOW);
    assert.deepEqual(store.getUser('carol')?.roles, [], 'the old binding went with the user');
    const db = new Database(file, { readonly: true });
    try { assert.deepEqual(db.prepare('SELECT user_name, role_name FROM user_roles ORDER BY 1, 2').all(), [{ user_name: 'bob', role_name: 'operator' }]); } finally { db.close(); }
  });

  test('user keys: add, find by key, remove; conflicts with users and devices', () => {
    store.addUser('bob', ['operator'], [key('b1')], NOW);
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.addUserKey('bob', key('b2'));
    assert.deepEqual(store.getUser('bob')?.keys, [key('b1'), key('b2')]);
    assert.deepEqual(store.getUserByKey('SHA256:b2'), { name: 'bob', roles: ['operator'], createdAt: NOW, keys: [key('b1'), key('b2')] });
    assert.equal(store.getUserByKey('SHA256:nope'), null);
    rejects(() => store.addUserKey('bob', key('a')), 'FERRY_CONFLICT', /^key SHA256:a belongs to user 'alice' already/);
    rejects(() => store.addUserKey('bob', key('b1')), 'FERRY_CONFLICT', /belongs to user 'bob' already/);
    rejects(() => store.addUserKey('zed', key('z')), 'FERRY_NOT_FOUND', /^there is no user 'zed'; 'users' lists them$/);
    token();
    redeem();
    rejects(() => store.addUserKey('bob', { fingerprint: 'SHA256:dev1', line: 'x' }), 'FERRY_CONFLICT', /is a device's key/);
    assert.equal(store.removeUserKey('alice', 'SHA256:b1'), false, "not alice's key");
    assert.equal(store.removeUserKey('bob', 'SHA256:b1'), true);
    assert.equal(store.removeUserKey('bob', 'SHA256:b1'), false);
    assert.deepEqual(store.getUser('bob')?.keys, [key('b2')]);
    assert.equal(store.getUserByKey('SHA256:b1'), null);
  });

  test('listSubjects: every user with keys and resolved roles, what the policy takes', () => {
    store.addRole(berlin, NOW);
    store.addUser('bob', ['berlin', 'operator'], [key('b2'), key('b1')], NOW);
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.addUser('nokey', ['operator'], [], NOW);
    const operator = { name: 'operator', devices: ['*'], logins: ['*'], forwards: ['*'], actions: [] };
    assert.deepEqual(store.listSubjects(), [
      { name: 'alice', keys: [key('a')], roles: [{ name: 'admin', devices: ['*'], logins: ['*'], forwards: ['*'], actions: ['*'] }] },
      { name: 'bob', keys: [key('b1'), key('b2')], roles: [berlin, operator] },
      { name: 'nokey', keys: [], roles: [operator] },
    ]);
    store.updateRole({ ...berlin, logins: ['root'] }, NOW + 1);
    assert.deepEqual(store.listSubjects()[1]?.roles[0]?.logins, ['root'], 'read at call time');
  });
});

describe('token redemption', () => {
  const UNKNOWN = /^the relay does not know this enrollment token: ask an admin for a new one \(token create\)$/;

  test('creates a pending device with the fallback name and the token labels, using the token up', () => {
    token({ labels: { site: 'berlin' } });
    const d = redeem();
    assert.equal(d.name, 'host');
    assert.equal(d.status, 'pending');
    assert.deepEqual(d.labels, { site: 'berlin' });
    assert.equal(d.keyFingerprint, 'SHA256:dev1');
    assert.equal(d.keyLine, 'ssh-ed25519 AAAAdev1');
    assert.equal(d.createdAt, NOW + 1000);
    assert.equal(d.onlineSince, null);
    assert.equal(d.lastSeen, null);
    assert.deepEqual(store.getDevice('host'), d);
    assert.deepEqual(store.getDeviceByKey('SHA256:dev1'), d);
    rejects(() => redeem({ keyFingerprint: 'SHA256:dev2', fallbackName: 'host2' }), 'FERRY_TOKEN_REFUSED', /^this enrollment token has been used up: ask an admin for a new one$/);
  });

  test('an approving token makes an approved device', () => {
    token({ approve: true });
    assert.equal(redeem().status, 'approved');
  });

  test('unknown token and wrong secret get the same message', () => {
    token();
    rejects(() => redeem({ id: 'nope' }), 'FERRY_TOKEN_REFUSED', UNKNOWN);
    rejects(() => redeem({ secretHash: hash('wrong') }), 'FERRY_TOKEN_REFUSED', UNKNOWN);
    rejects(() => redeem({ secretHash: Buffer.alloc(3) }), 'FERRY_TOKEN_REFUSED', UNKNOWN);
    assert.equal(store.listDevices().length, 0);
  });

  test('an expired token is refused, saying when it expired', () => {
    token({ expiresAt: NOW });
    rejects(() => redeem({ now: NOW }), 'FERRY_TOKEN_REFUSED', new RegExp(`^this enrollment token expired at ${new Date(NOW).toISOString()}`));
  });

  test('a token with several uses makes several devices, then is used up', () => {
    token({ usesLeft: 2 });
    redeem({ keyFingerprint: 'SHA256:k1', fallbackName: 'd1' });
    redeem({ keyFingerprint: 'SHA256:k2', fallbackName: 'd2' });
    rejects(() => redeem({ keyFingerprint: 'SHA256:k3', fallbackName: 'd3' }), 'FERRY_TOKEN_REFUSED', /used up/);
    assert.deepEqual(store.listDevices().map((d) => d.name), ['d1', 'd2']);
  });

  test('a token that fixes a name: a matching or absent --name is fine, another is refused', () => {
    token({ name: 'cam', usesLeft: 3 });
    rejects(() => redeem({ requestedName: 'other' }), 'FERRY_TOKEN_REFUSED', /^this token is for device 'cam', not 'other': drop --name or use a token for that name$/);
    assert.equal(redeem({ requestedName: null }).name, 'cam', 'the token name wins over the fallback name');
  });

  test('a fixed name with the same --name works', () => {
    token({ name: 'cam' });
    assert.equal(redeem({ requestedName: 'cam' }).name, 'cam');
  });

  test('the requested name wins over the fallback; no name at all is refused', () => {
    token({ usesLeft: 2 });
    assert.equal(redeem({ requestedName: 'wanted' }).name, 'wanted');
    rejects(() => redeem({ keyFingerprint: 'SHA256:k2', fallbackName: null }), 'FERRY_TOKEN_REFUSED', /^no device name: .* start the agent with --name NAME$/);
  });

  test('a name that is taken is a conflict and does not use the token', () => {
    token({ usesLeft: 1 });
    token({ id: 'tok2', usesLeft: 1 }, 'secret-2');
    redeem({ id: 'tok2', secretHash: hash('secret-2'), keyFingerprint: 'SHA256:k0', fallbackName: 'host' });
    rejects(() => redeem(), 'FERRY_CONFLICT', /^a device named 'host' is enrolled already: pick another --name, or have an admin run 'device rm host' first$/);
    assert.equal(redeem({ fallbackName: 'host-2' }).name, 'host-2', 'the use was not consumed by the refusal');
  });

  test('a key enrolled with another token cannot enrol again', () => {
    token();
    token({ id: 'tok2' }, 'secret-2');
    redeem();
    rejects(() => redeem({ id: 'tok2', secretHash: hash('secret-2'), fallbackName: 'host-b' }), 'FERRY_CONFLICT', /^this agent key is enrolled already as another device$/);
  });

  test('the same key redeeming the same token again gets its device back, even when used up or expired', () => {
    token({ expiresAt: NOW + 2000 });
    const first = redeem();
    assert.deepEqual(redeem({ now: NOW + 10_000, requestedName: 'ignored' }), first);
    assert.equal(store.listDevices().length, 1);
    // But not with a wrong secret.
    rejects(() => redeem({ secretHash: hash('wrong') }), 'FERRY_TOKEN_REFUSED', UNKNOWN);
  });
});

describe('listing and revoking tokens', () => {
  test('listTokens shows every token, newest first, without its secret hash', () => {
    token({ id: 'old', createdAt: NOW - 10, name: 'cam', labels: { site: 'x' }, approve: true });
    token({ id: 'new', createdAt: NOW, usesLeft: 5 });
    const list = store.listTokens();
    assert.deepEqual(list.map((t) => t.id), ['new', 'old']);
    assert.deepEqual(list[1], { id: 'old', createdBy: 'admin', createdAt: NOW - 10, expiresAt: NOW + 3_600_000, usesLeft: 1, name: 'cam', labels: { site: 'x' }, approve: true, revokedAt: null });
    assert.ok(list.every((t) => !('secretHash' in t) && !('secret_hash' in t)));
  });

  test('a revoked token is refused as revoked, even for the key that enrolled with it', () => {
    token({ usesLeft: 2 });
    redeem({ fallbackName: 'a', keyFingerprint: 'SHA256:ka' });
    assert.equal(store.revokeToken('tok1', NOW + 5), true);
    assert.equal(store.revokeToken('tok1', NOW + 6), false, 'only once');
    assert.equal(store.revokeToken('nope', NOW + 6), false);
    assert.equal(store.listTokens()[0]?.revokedAt, NOW + 5);
    rejects(() => redeem({ fallbackName: 'b', keyFingerprint: 'SHA256:kb' }), 'FERRY_TOKEN_REFUSED', /^this enrollment token was revoked at 2026-01-31T12:00:00\.005Z \(token rm\): ask an admin for a new one$/);
    rejects(() => redeem({ fallbackName: 'a', keyFingerprint: 'SHA256:ka' }), 'FERRY_TOKEN_REFUSED', /was revoked/);
    // Without the secret, a revoked token looks like any unknown one.
    rejects(() => redeem({ secretHash: hash('wrong') }), 'FERRY_TOKEN_REFUSED', /does not know this enrollment token/);
    assert.equal(store.listDevices().length, 1);
  });
});

describe('labels', () => {
  test('setDeviceLabels replaces the labels and reports whether the device exists', () => {
    token();
    redeem({ fallbackName: 'a' });
    assert.equal(store.setDeviceLabels('a', { site: 'berlin', floor: '2' }), true);
    assert.deepEqual(store.getDevice('a')?.labels, { site: 'berlin', floor: '2' });
    assert.equal(store.setDeviceLabels('zz', {}), false);
  });
});

describe('transactions', () => {
  test('a throw inside transaction() rolls back every write in it, audit rows included', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    assert.throws(() => store.transaction(() => {
      store.removeUser('alice');
      store.audit({ at: NOW, actor: 'x', action: 'user.rm', target: 'alice', detail: {} });
      throw new Error('disk full');
    }), /disk full/);
    assert.equal(store.getUser('alice')?.name, 'alice');
    assert.deepEqual(store.listAudit({ limit: 10 }), []);
    assert.equal(store.transaction(() => { store.removeUser('alice'); return 7; }), 7);
    assert.equal(store.getUser('alice'), null);
  });
});

describe('devices and presence', () => {
  beforeEach(() => {
    token({ usesLeft: 2, approve: true });
    redeem({ fallbackName: 'a', keyFingerprint: 'SHA256:ka' });
    redeem({ fallbackName: 'b', keyFingerprint: 'SHA256:kb' });
  });

  test('status changes and removal report whether the device existed', () => {
    assert.equal(store.setDeviceStatus('a', 'revoked'), true);
    assert.equal(store.getDevice('a')?.status, 'revoked');
    assert.equal(store.setDeviceStatus('zz', 'approved'), false);
    assert.equal(store.removeDevice('a'), true);
    assert.equal(store.removeDevice('a'), false);
    assert.equal(store.getDeviceByKey('SHA256:ka'), null);
    assert.deepEqual(store.listDevices().map((d) => d.name), ['b']);
  });

  test('markOnline, markOffline and markAllOffline', () => {
    store.markOffline('a', NOW, 'connection lost');
    store.markOnline('a', NOW + 10, '192.0.2.1:5000', '0.1.0');
    let a = store.getDevice('a')!;
    assert.deepEqual([a.onlineSince, a.lastSeen, a.remoteAddress, a.agentVersion, a.lastDisconnectReason], [NOW + 10, NOW + 10, '192.0.2.1:5000', '0.1.0', null],
      'going online clears the last disconnect reason');
    store.markOffline('a', NOW + 20, 'keepalive timeout');
    a = store.getDevice('a')!;
    assert.deepEqual([a.onlineSince, a.lastSeen, a.remoteAddress, a.lastDisconnectReason], [null, NOW + 20, '192.0.2.1:5000', 'keepalive timeout']);

    store.markOnline('a', NOW + 30, '192.0.2.1:5001', null);
    store.markOnline('b', NOW + 31, '192.0.2.2:5000', '0.1.0');
    assert.equal(store.markAllOffline(NOW + 40, 'relay restarted'), 2);
    for (const d of store.listDevices()) {
      assert.equal(d.onlineSince, null);
      assert.equal(d.lastSeen, NOW + 40);
      assert.equal(d.lastDisconnectReason, 'relay restarted');
    }
    assert.equal(store.markAllOffline(NOW + 50, 'relay restarted'), 0, 'offline devices are not touched');
    assert.equal(store.getDevice('a')?.lastSeen, NOW + 40);
  });
});

describe('audit', () => {
  test('filters by time and device, keeps the newest within the limit, oldest first', () => {
    const entries = [
      { at: NOW, actor: 'alice', action: 'token.create', target: null, detail: { id: 't' } },
      { at: NOW + 10, actor: 'alice', action: 'device.approve', target: 'a', detail: {} },
      { at: NOW + 20, actor: 'bob', action: 'device.revoke', target: 'b', detail: { why: 'lost' } },
      { at: NOW + 30, actor: 'alice', action: 'device.rm', target: 'a', detail: {} },
    ];
    for (const e of entries) store.audit(e);
    const all = store.listAudit({ limit: 100 });
    assert.deepEqual(all.map(({ id: _id, prevHash: _p, hash: _h, ...rest }) => rest), entries.map((e) => ({ ...e, source: 'relay' })));
    assert.ok(all.every((e, i) => i === 0 || e.id > all[i - 1]!.id));
    assert.deepEqual(store.listAudit({ since: NOW + 10, limit: 100 }).map((e) => e.at), [NOW + 10, NOW + 20, NOW + 30]);
    assert.deepEqual(store.listAudit({ device: 'a', limit: 100 }).map((e) => e.action), ['device.approve', 'device.rm']);
    assert.deepEqual(store.listAudit({ device: 'a', since: NOW + 11, limit: 100 }).map((e) => e.action), ['device.rm']);
    assert.deepEqual(store.listAudit({ limit: 2 }).map((e) => e.at), [NOW + 20, NOW + 30]);
    assert.deepEqual(store.listAudit({ device: 'zz', limit: 100 }), []);
  });
});

describe('audit filters and the chain', () => {
  const rows = [
    { at: NOW, actor: 'alice', action: 'reach.start', target: 'cam', detail: { session: 1 } },
    { at: NOW + 10, actor: 'alice', action: 'reach.end', target: 'cam', detail: { session: 1, bytesIn: 5 } },
    { at: NOW + 20, actor: 'bob', action: 'reach.refused', target: 'gate', detail: { why: 'no role' } },
    { at: NOW + 30, actor: 'bob', action: 'reachable.check', target: 'gate', detail: {} },
    { at: NOW + 40, actor: 'pi', action: 'ssh.login', target: 'cam', detail: { login: 'pi' }, source: 'device' as const },
    { at: NOW + 50, actor: 'alice', action: 'reach', target: null, detail: {} },
  ];
  beforeEach(() => { for (const r of rows) store.audit(r); });
  const actions = (f: Partial<Parameters<Store['listAudit']>[0]>) => store.listAudit({ limit: 100, ...f }).map((a) => a.action);

  test('audit returns the row as written, chained to the one before', () => {
    const a = store.audit({ at: NOW + 60, actor: 'x', action: 'user.add', target: 'y', detail: { k: 1 } });
    const b = store.audit({ at: NOW + 61, actor: 'cam', action: 'ssh.file', target: 'cam', detail: {}, source: 'device' });
    assert.equal(a.id, rows.length + 1);
    assert.deepEqual({ ...a, hash: '', prevHash: '' }, { id: a.id, at: NOW + 60, actor: 'x', action: 'user.add', target: 'y', detail: { k: 1 }, source: 'relay', prevHash: '', hash: '' });
    assert.match(a.hash, /^[0-9a-f]{64}$/);
    assert.equal(b.prevHash, a.hash);
    assert.equal(b.source, 'device');
    assert.deepEqual(store.listAudit({ limit: 2 }), [a, b], 'listAudit reads back the same records');
    assert.equal(store.listAudit({ limit: 100 })[0]?.prevHash, '0'.repeat(64), 'the first row starts from zeros');
  });

  test('by action: exact, or a prefix ending in .*', () => {
    assert.deepEqual(actions({ action: 'reach.*' }), ['reach.start', 'reach.end', 'reach.refused']);
    assert.deepEqual(actions({ action: 'reach' }), ['reach']);
    assert.deepEqual(actions({ action: 'reach.end' }), ['reach.end']);
    assert.deepEqual(actions({ action: 'ssh.*' }), ['ssh.login']);
    assert.deepEqual(actions({ action: 'rea%' }), [], 'no LIKE wildcards');
    assert.deepEqual(actions({ action: 'reach_start' }), []);
  });

  test('by user (actor), device (target), since and until (half open), combined, limit keeps the newest', () => {
    assert.deepEqual(actions({ user: 'bob' }), ['reach.refused', 'reachable.check']);
    assert.deepEqual(actions({ device: 'cam' }), ['reach.start', 'reach.end', 'ssh.login']);
    assert.deepEqual(actions({ since: NOW + 10, until: NOW + 30 }), ['reach.end', 'reach.refused']);
    assert.deepEqual(actions({ user: 'alice', device: 'cam', action: 'reach.*', since: NOW + 1 }), ['reach.end']);
    assert.deepEqual(actions({ action: 'reach.*', limit: 2 }), ['reach.end', 'reach.refused']);
    assert.deepEqual(store.listAudit({ limit: 100 }).map((a) => a.source), ['relay', 'relay', 'relay', 'relay', 'device', 'relay']);
  });

  test('iterateAudit streams every row in id order; verifyAudit passes and names the head', () => {
    const all = [...store.iterateAudit()];
    assert.deepEqual(all, store.listAudit({ limit: 100 }));
    assert.deepEqual(store.verifyAudit(), { ok: true, rows: rows.length, head: all.at(-1)!.hash });
  });

  test('two connections appending in turn chain to each other', () => {
    const other = openSqliteStore(file);
    try {
      const a = other.audit({ at: NOW, actor: 'local:root', action: 'user.add', target: 'x', detail: {} });
      const b = store.audit({ at: NOW, actor: 'relay', action: 'device.connect', target: 'cam', detail: {} });
      assert.equal(b.prevHash, a.hash);
      assert.equal(other.verifyAudit().ok, true);
      assert.deepEqual(store.verifyAudit(), other.verifyAudit());
    } finally { other.close(); }
  });

  test('iterateAudit crosses batch boundaries and lets other store calls run while it streams', () => {
    store.transaction(() => { for (let i = 0; i < 2500; i++) store.audit({ at: NOW + i, actor: 'x', action: 'bulk', target: null, detail: { i } }); });
    let n = 0;
    let last = 0;
    for (const r of store.iterateAudit()) {
      assert.ok(r.id > last, 'id order');
      last = r.id;
      if (++n === 1500) store.audit({ at: NOW, actor: 'x', action: 'during', target: null, detail: {} });
    }
    assert.equal(n, rows.length + 2501, 'every row, and the one written while streaming');
    assert.deepEqual(store.verifyAudit(), { ok: true, rows: n, head: store.listAudit({ limit: 1 })[0]!.hash });
  });

  test('an empty log verifies', () => {
    const empty = openSqliteStore(newFile());
    try { assert.deepEqual(empty.verifyAudit(), { ok: true, rows: 0, head: null }); } finally { empty.close(); }
  });

  test('a rolled-back audit row leaves the chain and its head as they were', () => {
    const before = store.verifyAudit();
    assert.throws(() => store.transaction(() => { store.audit({ at: NOW, actor: 'x', action: 'y', target: null, detail: {} }); throw new Error('no'); }), /no/);
    assert.deepEqual(store.verifyAudit(), before);
    store.audit({ at: NOW, actor: 'x', action: 'y', target: null, detail: {} });
    assert.equal(store.verifyAudit().ok, true, 'and the next row chains on');
  });
});

describe('changeCounter', () => {
  test('changes when another connection commits, not on reads', () => {
    const other = openSqliteStore(file);
    try {
      const before = store.changeCounter();
      store.listUsers();
      assert.equal(store.changeCounter(), before);
      other.addUser('alice', ['admin'], [key('a')], NOW);
      const afterOne = store.changeCounter();
      assert.notEqual(afterOne, before);
      assert.equal(store.getUser('alice')?.name, 'alice', 'and the change is visible');
      other.audit({ at: NOW, actor: 'x', action: 'y', target: null, detail: {} });
      assert.notEqual(store.changeCounter(), afterOne);
    } finally {
      other.close();
    }
  });
});

describe('console sign-in links and sessions (migration 7)', () => {
  test('a link is spent once, within its expiry; a used or expired one says which', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.addLoginLink(hash('link-1'), { user: 'alice', createdAt: NOW, expiresAt: NOW + 120_000 });
    store.addLoginLink(hash('link-2'), { user: 'alice', createdAt: NOW, expiresAt: NOW + 120_000 });
    assert.deepEqual(store.redeemLoginLink(hash('link-1'), NOW + 1), { user: 'alice' });
    assert.deepEqual(store.redeemLoginLink(hash('link-1'), NOW + 2), { refused: 'used', user: 'alice' });
    assert.deepEqual(store.redeemLoginLink(hash('link-2'), NOW + 120_000), { refused: 'expired', user: 'alice' });
    assert.deepEqual(store.redeemLoginLink(hash('nope'), NOW), { refused: 'unknown', user: null });
  });

  test('sessions are found by their secret hash, end by id, go with their user, and expire', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.addUser('bob', ['admin'], [key('b')], NOW);
    const s = (id: string, user: string, expiresAt: number) => ({ id, user, csrf: `csrf-${id}`, createdAt: NOW, expiresAt, remoteAddress: '127.0.0.1' });
    store.addWebSession(hash('s1'), s('one', 'alice', NOW + 1000));
    store.addWebSession(hash('s2'), s('two', 'alice', NOW + 5000));
    store.addWebSession(hash('s3'), s('three', 'bob', NOW + 5000));
    assert.equal(store.getWebSession(hash('s1'))?.csrf, 'csrf-one');
    assert.equal(store.getWebSession(hash('one')), null, 'the public id is not the key');
    assert.deepEqual(store.expireWebAuth(NOW + 1000, 0).map((x) => x.id), ['one']);
    assert.equal(store.getWebSession(hash('s1')), null);
    assert.equal(store.removeWebSession('two'), true);
    assert.equal(store.removeWebSession('two'), false);
    store.removeUser('bob');
    assert.equal(store.getWebSession(hash('s3')), null, 'removing the user removes their sessions');
  });

  test('old links are forgotten after they have been kept for a while', () => {
    store.addUser('alice', ['admin'], [key('a')], NOW);
    store.addLoginLink(hash('old'), { user: 'alice', createdAt: NOW, expiresAt: NOW + 1 });
    store.expireWebAuth(NOW + 10, 100);
    assert.equal(store.redeemLoginLink(hash('old'), NOW + 10).user, 'alice', 'kept: still told expired');
    store.expireWebAuth(NOW + 1000, 100);
    assert.deepEqual(store.redeemLoginLink(hash('old'), NOW + 1000), { refused: 'unknown', user: null });
  });
});
