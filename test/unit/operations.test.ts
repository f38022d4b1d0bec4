// Covers src/relay/operations/: typed operations against a real SQLite store in a temp dir. The
// principal's roles are read at call time, refusals are audited and name the rule, changes and
// their audit rows commit together, and reads show only what the principal may reach.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/common/errors.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import {
  addRole, addUser, approveDevice, createToken, editRole, exportAudit, labelDevice, listDevices, perform, readAudit, removeUser,
  setUserRoles, sshConfig, whoami, type Operation, type OperationContext,
  createLoginLink, listSessions, showDevice,
} from '../../src/relay/operations/index.ts';
import type { Principal } from '../../src/relay/principal.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store } from '../../src/relay/store.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const RELAY = { publicAddress: 'relay.example.com:2222', fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8', hostKeyLine: 'ssh-ed25519 AAAArelay' };
const dir = mkdtempSync(join(tmpdir(), 'ferry-operations-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const adminKey = generateKeyPair('admin').publicKey;
const boKey = generateKeyPair('bo').publicKey;
const LOCAL: Principal = { kind: 'local', user: 'local:root' };
const ADMIN: Principal = { kind: 'ssh', user: 'admin', keyFingerprint: adminKey.fingerprint, remoteAddress: '192.0.2.1' };
const BO: Principal = { kind: 'ssh', user: 'bo', keyFingerprint: boKey.fingerprint, remoteAddress: '192.0.2.2' };

let store: Store;
let changes: (string | undefined)[];
let ctx: OperationContext;
beforeEach(() => {
  store = openSqliteStore(join(dir, `store-${++n}.db`));
  store.addUser('admin', ['admin'], [{ fingerprint: adminKey.fingerprint, line: adminKey.line }], NOW);
  changes = [];
  ctx = { store, now: NOW, relay: RELAY, onChange: (d) => changes.push(d) };
});
afterEach(() => store.close());

const as = <I, R>(p: Principal, op: Operation<I, R>, input: I): R => perform(ctx, p, op, input);

/** Enrols a device through a token made by the operation, the way an agent would. */
function enrol(name: string, labels: Record<string, string>, hostKeyLine: string | null = `ssh-ed25519 AAAA${name}`): void {
  const t = as(LOCAL, createToken, { name, labels, approve: true });
  const decoded = decodeToken(t.token);
  assert.ok('claims' in decoded);
  store.redeemToken({ id: t.id, secretHash: createHash('sha256').update(decoded.claims.secret).digest(), requestedName: null, fallbackName: null, keyFingerprint: `SHA256:${name}`, keyLine: `ssh-ed25519 AAAA${name}`, hostKeyLine, now: NOW });
}

function throwsCode(fn: () => unknown, code: string, message?: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isFerryError(err), String(err));
    assert.equal(err.code, code);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}

describe('perform: permission by typed action, from the store at call time', () => {
  test("a refusal is FERRY_PERMISSION_DENIED with mayAct's message, audited as action.refused with its target", () => {
    as(LOCAL, addUser, { name: 'bo', keys: [boKey.line] });
    const why = "'bo' may not run device.approve: no role grants it (roles operator: actions none)";
    throwsCode(() => as(BO, approveDevice, { name: 'cam' }), 'FERRY_PERMISSION_DENIED', why);
    const [row] = store.listAudit({ action: 'action.refused', limit: 5 });
    assert.deepEqual([row?.actor, row?.target, row?.detail], ['bo', 'cam', { action: 'device.approve', why }]);
  });

  test('a binding or role change applies to the very next call, with no cache in between', () => {
    enrol('cam', {});
    as(LOCAL, addUser, { name: 'bo', keys: [boKey.line] });
    as(LOCAL, addRole, { name: 'approver', devices: ['*'], logins: ['pi'], actions: ['device.*'] });
    throwsCode(() => as(BO, labelDevice, { name: 'cam', set: { a: '1' }, remove: [] }), 'FERRY_PERMISSION_DENIED');
    as(ADMIN, setUserRoles, { name: 'bo', roles: ['approver'] });
    assert.deepEqual(as(BO, labelDevice, { name: 'cam', set: { a: '1' }, remove: [] }), { name: 'cam', labels: { a: '1' } });
    as(ADMIN, editRole, { name: 'approver', actions: ['device.approve'] });
    throwsCode(() => as(BO, labelDevice, { name: 'cam', set: { b: '1' }, remove: [] }), 'FERRY_PERMISSION_DENIED', /roles approver: actions device\.approve/);
  });

  test('the local CLI may run every action and is recorded under its own name', () => {
    as(LOCAL, addRole, { name: 'x', devices: ['*'], logins: ['*'] });
    assert.equal(store.listAudit({ action: 'role.add', limit: 1 })[0]?.actor, 'local:root');
  });

  test('whoami for each kind of principal', () => {
    as(LOCAL, addUser, { name: 'bo', keys: [boKey.line], roles: ['operator'] });
    assert.deepEqual(as(BO, whoami, {}), { name: 'bo', role: 'operator', roles: ['operator'], keyFingerprint: boKey.fingerprint });
    assert.deepEqual(as(LOCAL, whoami, {}), { name: 'local:root', role: 'admin', roles: ['admin'], keyFingerprint: null });
    assert.deepEqual(as({ kind: 'ssh', user: 'gone', keyFingerprint: 'SHA256:x', remoteAddress: '' }, whoami, {}), { name: 'gone', role: null, roles: [], keyFingerprint: 'SHA256:x' });
  });
});

describe('reads show what the principal may reach', () => {
  beforeEach(() => {
    enrol('b-dev', { site: 'berlin', env: 'dev' });
    enrol('b-prod', { site: 'berlin', env: 'prod' });
    enrol('paris', { site: 'paris' }, null);
    as(LOCAL, addRole, { name: 'berlin-ops', devices: ['site=berlin,env!=prod'], logins: ['pi'] });
    as(LOCAL, addUser, { name: 'bo', keys: [boKey.line], roles: ['berlin-ops'] });
  });

  test('listDevices: reachable ones only; all with device.list; filters on top', () => {
    assert.deepEqual(as(BO, listDevices, {}).devices.map((d) => d.name), ['b-dev']);
    assert.deepEqual(as(ADMIN, listDevices, {}).devices.map((d) => d.name), ['b-dev', 'b-prod', 'paris']);
    assert.deepEqual(as(ADMIN, listDevices, { labels: { site: 'berlin' } }), { devices: as(ADMIN, listDevices, {}).devices.slice(0, 2), total: 2, visible: 3 });
    assert.deepEqual(as(ADMIN, listDevices, { online: true }).devices, []);
  });

  test('a label change moves a device into or out of a role at once', () => {
    changes = [];
    as(LOCAL, labelDevice, { name: 'b-prod', set: { env: 'staging' }, remove: [] });
    assert.deepEqual(as(BO, listDevices, {}).devices.map((d) => d.name), ['b-dev', 'b-prod']);
    assert.deepEqual(changes, ['b-prod']);
  });

  test('sshConfig: known_hosts for reachable devices only; the local CLI with a user name sees what that user sees', () => {
    const mine = as(BO, sshConfig, {});
    assert.deepEqual(mine.knownHosts, ['[relay.example.com]:2222 ssh-ed25519 AAAArelay', 'b-dev.ferry,b-dev ssh-ed25519 AAAAb-dev']);
    assert.match(mine.config!, /\n {2}User bo\n/);
    assert.deepEqual(as(LOCAL, sshConfig, { user: 'bo' }).knownHosts, mine.knownHosts);
    assert.equal(as(LOCAL, sshConfig, {}).config, null);
    assert.deepEqual(as(LOCAL, sshConfig, {}).knownHosts.length, 3, 'relay, b-dev and b-prod (paris reported no host key)');
    throwsCode(() => as(LOCAL, sshConfig, { user: 'ghost' }), 'FERRY_NOT_FOUND');
  });
});

describe('changes', () => {
  test('createToken: typed input, defaults, and a token that redeems', () => {
    const t = as(ADMIN, createToken, {});
    assert.deepEqual({ ...t, token: '', id: '' }, { token: '', id: '', expiresAt: new Date(NOW + 3_600_000).toISOString(), uses: 1, name: null, labels: {}, approve: false, relay: RELAY.publicAddress, endpoints: [RELAY.publicAddress], fingerprint: RELAY.fingerprint });
    throwsCode(() => as(ADMIN, createToken, { ttlMs: 0, uses: 0, labels: { A: '1' } }), 'FERRY_USAGE', [
      '--ttl must be a positive duration like 15m, 1h or 7d', "--uses '0' must be a whole number from 1 to 100000", "label key 'A' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
    ].join('\n'));
  });

  test('each change is audited under the principal, and live connections are told', () => {
    enrol('cam', {});
    changes = [];
    as(ADMIN, addUser, { name: 'bo', keys: [boKey.line] });
    as(ADMIN, setUserRoles, { name: 'bo', roles: ['admin'] });
    as(ADMIN, removeUser, { name: 'bo' });
    assert.deepEqual(store.listAudit({ user: 'admin', limit: 10 }).map((a) => [a.action, a.target]), [['user.add', 'bo'], ['user.role', 'bo'], ['user.remove', 'bo']]);
    assert.deepEqual(changes, [undefined, undefined, undefined]);
  });

  test('the guard undoes a change that would leave nobody to manage access, audit row and all', () => {
    const before = store.listAudit({ limit: 100 }).length;
    throwsCode(() => as(LOCAL, setUserRoles, { name: 'admin', roles: ['operator'] }), 'FERRY_CONFLICT', /would leave nobody who can manage access/);
    assert.deepEqual([store.getUser('admin')?.roles, store.listAudit({ limit: 100 }).length, changes], [['admin'], before, []]);
  });
});

describe('audit', () => {
  test('readAudit passes the filters to the store; exportAudit streams every row from since on', () => {
    for (let i = 0; i < 5; i++) store.audit({ at: NOW + i, actor: i % 2 ? 'bo' : 'admin', action: i < 3 ? 'reach.start' : 'reach.end', target: 'cam', detail: { i } });
    assert.deepEqual(as(ADMIN, readAudit, { user: 'bo', action: 'reach.*', limit: 1 }).map((a) => a.detail), [{ i: 3 }]);
    const rows = as(ADMIN, exportAudit, { since: NOW + 2 });
    assert.equal(typeof rows.next, 'function', 'an iterator, not an array');
    assert.deepEqual([...rows].map((a) => a.detail), [{ i: 2 }, { i: 3 }, { i: 4 }]);
    throwsCode(() => as(ADMIN, readAudit, { limit: 0 }), 'FERRY_USAGE', '--limit must be a whole number from 1 to 10000');
  });
});

describe('console operations: device pages and details, sessions, sign-in links', () => {
  beforeEach(() => {
    for (const name of ['cam-3', 'cam-1', 'door', 'cam-2']) enrol(name, name === 'door' ? { site: 'berlin' } : {});
    store.markOnline('cam-2', NOW, '192.0.2.9', '0.1.0');
    as(LOCAL, addRole, { name: 'berlin-ops', devices: ['site=berlin'], logins: ['pi'] });
    as(LOCAL, addUser, { name: 'bo', keys: [boKey.line], roles: ['berlin-ops'] });
  });

  test('listDevices pages: q in any case, status, online first, offset and limit, total of the matches', () => {
    const page = as(ADMIN, listDevices, { q: 'CAM', onlineFirst: true, offset: 0, limit: 2 });
    assert.deepEqual(page.devices.map((d) => d.name), ['cam-2', 'cam-1']);
    assert.equal(page.total, 3);
    assert.equal(page.visible, 4);
    assert.deepEqual(as(ADMIN, listDevices, { q: 'cam', onlineFirst: true, offset: 2, limit: 2 }).devices.map((d) => d.name), ['cam-3']);
    assert.equal(as(ADMIN, listDevices, { status: 'pending' }).total, 0);
    throwsCode(() => as(ADMIN, listDevices, { limit: 201, offset: -1 }), 'FERRY_USAGE', /offset must be[\s\S]*limit must be a whole number from 1 to 200/);
  });

  test('showDevice: logins and console availability; a hidden device is refused in the words of a missing one', () => {
    const door = as(BO, showDevice, { name: 'door' });
    assert.deepEqual(door.logins, ['pi']);
    assert.deepEqual(door.console, { available: false, why: "device 'door' is offline" });
    assert.deepEqual(as(ADMIN, showDevice, { name: 'cam-2' }).console, { available: true, why: null });
    const hidden = (() => { try { as(BO, showDevice, { name: 'cam-2' }); } catch (err) { return err as Error; } return null; })();
    const missing = (() => { try { as(BO, showDevice, { name: 'nope' }); } catch (err) { return err as Error; } return null; })();
    assert.ok(isFerryError(hidden, 'FERRY_NOT_FOUND') && isFerryError(missing, 'FERRY_NOT_FOUND'));
    assert.equal(hidden.message.replace('cam-2', 'X'), missing.message.replace('nope', 'X'));
    throwsCode(() => as(ADMIN, showDevice, { name: 'nope' }), 'FERRY_NOT_FOUND', "no device named 'nope'; 'devices' lists them");
  });

  test('listSessions: live from the tracker, past from reach.end rows, newest first; without audit.read only one\'s own', () => {
    const live = { id: 'live-1', user: 'bo', device: 'door', kind: 'console' as const, login: 'pi', recordingId: null, startedAt: NOW - 5000, bytesIn: 3, bytesOut: 4, principal: BO };
    ctx.liveReaches = () => [live];
    store.audit({ at: NOW - 1000, actor: 'admin', action: 'reach.end', target: 'cam-1', detail: { session: 'old-1', kind: 'jump', started: NOW - 3000, durationMs: 2000, bytesIn: 10, bytesOut: 20, why: 'client closed' } });
    store.audit({ at: NOW - 500, actor: 'bo', action: 'reach.end', target: 'door', detail: { session: 'old-2', kind: 'console', login: 'pi', started: NOW - 900, durationMs: 400, bytesIn: 1, bytesOut: 2, why: 'link lost' } });
    store.addRecording({ id: 'abcdef0123456789', sessionId: 'old-2', device: 'door', user: 'bo', login: 'pi', startedAt: NOW - 900, path: 'recordings/x.cast' });
    const all = as(ADMIN, listSessions, {}).sessions;
    assert.deepEqual(all.map((s) => [s.id, s.live]), [['live-1', true], ['old-2', false], ['old-1', false]]);
    assert.deepEqual(all[1], {
      id: 'old-2', user: 'bo', device: 'door', kind: 'console', login: 'pi', startedAt: new Date(NOW - 900).toISOString(), endedAt: new Date(NOW - 500).toISOString(),
      durationMs: 400, bytesIn: 1, bytesOut: 2, endReason: 'link lost', recordingId: 'abcdef0123456789', live: false,
    });
    assert.equal(all[0]!.durationMs, 5000);
    assert.deepEqual(as(BO, listSessions, {}).sessions.map((s) => s.id), ['live-1', 'old-2'], 'bo sees only his own');
    assert.deepEqual(as(BO, listSessions, { user: 'admin' }).sessions, []);
    assert.deepEqual(as(ADMIN, listSessions, { live: false, device: 'cam-1' }).sessions.map((s) => s.id), ['old-1']);
    assert.deepEqual(as(ADMIN, listSessions, { live: true }).sessions.map((s) => s.id), ['live-1']);
    assert.equal(as(ADMIN, listSessions, { limit: 1 }).sessions.length, 1);
  });

  test('createLoginLink: for oneself over SSH, for anyone locally; a link in the fragment, stored hashed, audited', () => {
    ctx.relay = { ...RELAY, consoleUrl: 'https://relay.example.com:8443' };
    const link = as(BO, createLoginLink, {});
    assert.match(link.url, /^https:\/\/relay\.example\.com:8443\/login#[A-Za-z0-9_-]{43}$/);
    assert.equal(link.user, 'bo');
    assert.equal(link.ttlSeconds, 120);
    assert.deepEqual(store.redeemLoginLink(createHash('sha256').update(new URL(link.url).hash.slice(1)).digest(), NOW + 1), { user: 'bo' });
    throwsCode(() => as(BO, createLoginLink, { user: 'admin' }), 'FERRY_PERMISSION_DENIED', /for yourself only/);
    assert.equal(as(LOCAL, createLoginLink, { user: 'admin' }).user, 'admin');
    throwsCode(() => as(LOCAL, createLoginLink, {}), 'FERRY_USAGE');
    throwsCode(() => as(LOCAL, createLoginLink, { user: 'ghost' }), 'FERRY_NOT_FOUND');
    assert.deepEqual(store.listAudit({ action: 'web.link', limit: 5 }).map((r) => [r.actor, r.target]), [['bo', 'bo'], ['local:root', 'admin']]);
    ctx.relay = RELAY;
    throwsCode(() => as(BO, createLoginLink, {}), 'FERRY_CONFLICT', /no web console/);
  });
});
