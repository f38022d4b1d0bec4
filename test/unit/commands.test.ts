// Covers src/relay/commands.ts, the argv front end over the operations: every command's human and --json
// output, usage errors, permission refusals that name the rule, and the guards (nobody can manage access).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { actionProblem } from '../../src/protocol/access-rules.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import { helpText, runCommand, type CommandContext, type CommandResult } from '../../src/relay/commands.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Principal } from '../../src/relay/principal.ts';
import type { AuditRecord, Store } from '../../src/relay/store.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const ISO_NOW = new Date(NOW).toISOString();
const RELAY = { publicAddress: 'relay.example.com:2222', fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8' };
const RSA_LINE = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDA4mXeMuVTbNPgEHyGGXjxbgbjkWdnqhZEKFiA8Qe7X7ARR85p0mSWFNe9FFgXJYiUZJ4FfyBUzppfS7WMtmnAO/PiEyXgNbXfF3DGcHS2CW5bHeOAbn5sDtAAJSK7r4CdcsOqiK/kh9tCmygI5/wDzsTNqtJbtB/tIwmZjoq6Rw== rsa';
const HELP_HINT = "run 'help' for every command and its flags\n";
const USAGE = helpText(RELAY.publicAddress, 'admin');
const actionProblemText = (item: string) => actionProblem(item)!;

const dir = mkdtempSync(join(tmpdir(), 'ferry-commands-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;

const adminKey = generateKeyPair('admin').publicKey;
const keys = Array.from({ length: 4 }, (_, i) => generateKeyPair(`k${i}`).publicKey);

let store: Store;
let changed: string[];
beforeEach(() => {
  store = openSqliteStore(join(dir, `store-${++fileCount}.db`));
  store.addUser('admin', ['admin'], [{ fingerprint: adminKey.fingerprint, line: adminKey.line }], NOW - 1000);
  changed = [];
});
afterEach(() => store.close());

const ADMIN: Principal = { kind: 'ssh', user: 'admin', keyFingerprint: adminKey.fingerprint, remoteAddress: '192.0.2.9' };
const LOCAL: Principal = { kind: 'local', user: 'local:root' };

/** A relay user logged in over SSH (the user must exist for its roles to count). */
function as(user: string): Principal {
  return { kind: 'ssh', user, keyFingerprint: store.getUser(user)?.keys[0]?.fingerprint ?? 'SHA256:none', remoteAddress: '192.0.2.9' };
}

function ctx(principal: Principal = ADMIN, now = NOW): CommandContext {
  return { store, now, relay: RELAY, principal, onChange: (name) => changed.push(name ?? '(users)') };
}

/** The audit row without its chain fields, for comparing. */
function row(a: AuditRecord | undefined) {
  return a && { at: a.at, actor: a.actor, action: a.action, target: a.target, detail: a.detail };
}

/** Runs a command line (split on spaces) as `admin`, or as the given actor. */
/** Runs a command line; output that comes lazily (`more`) is read into stdout. */
function run(line: string | string[], c: CommandContext = ctx()): CommandResult {
  const { more, ...r } = runCommand(c, typeof line === 'string' ? line.split(' ').filter(Boolean) : line);
  return more ? { ...r, stdout: r.stdout + [...more].join('') } : r;
}

function ok(r: CommandResult): CommandResult {
  assert.equal(r.code, 0, `expected success, got ${JSON.stringify(r)}`);
  return r;
}

function jsonOf(r: CommandResult): unknown {
  ok(r);
  assert.equal(r.stderr, '');
  return JSON.parse(r.stdout) as unknown;
}

function usage(r: CommandResult, message: string, full = false): void {
  assert.deepEqual(r, { code: 2, stdout: '', stderr: `ferry: ${message}\n${full ? `\n${USAGE}\n` : HELP_HINT}` });
}

function refused(r: CommandResult, message: string): void {
  assert.deepEqual(r, { code: 1, stdout: '', stderr: `ferry: ${message}\n` });
}

/** Enrols a device through a token, the way an agent would, and returns its name. */
function enrol(name: string, opts: { approve?: boolean; labels?: string[]; key?: string } = {}): string {
  const args = ['token', 'create', '--name', name, ...(opts.approve ? ['--approve'] : []), ...(opts.labels ?? []).flatMap((l) => ['--label', l])];
  const r = ok(run(args));
  const decoded = decodeToken(r.stdout.trim());
  assert.ok('claims' in decoded);
  store.redeemToken({
    id: decoded.claims.id, secretHash: createHash('sha256').update(decoded.claims.secret).digest(), requestedName: null, fallbackName: null,
    keyFingerprint: opts.key ?? `SHA256:${name}`, keyLine: `ssh-ed25519 AAAA${name}`, now: NOW,
  });
  return name;
}

describe('help and unknown commands', () => {
  test('no command, help and --help print the usage', () => {
    for (const words of [[], ['help'], ['--help']]) assert.deepEqual(runCommand(ctx(), words), { code: 0, stdout: USAGE + '\n', stderr: '' });
    assert.deepEqual(runCommand(ctx(as('nobody')), ['help']).code, 0, 'anyone gets help');
    for (const words of [['devices', '--help'], ['token', 'create', '-h'], ['device', 'label', '--help']]) {
      assert.deepEqual(runCommand(ctx(), words), { code: 0, stdout: USAGE + '\n', stderr: '' }, words.join(' '));
    }
  });

  test('an unknown command is a usage error with the full usage', () => {
    usage(run('frob'), "unknown command 'frob'", true);
    usage(run('token'), "unknown token command '': use create, ls or rm", true);
    usage(run('token delete'), "unknown token command 'delete': use create, ls or rm", true);
    usage(run('user'), "unknown user command '': use add, rm, role or key", true);
    usage(run('user frob x'), "unknown user command 'frob': use add, rm, role or key", true);
    usage(run('user key frob x'), "unknown user key command 'frob': use add or rm", true);
    usage(run('role'), "unknown role command '': use add, edit, rm or ls", true);
    usage(run('role frob x'), "unknown role command 'frob': use add, edit, rm or ls", true);
  });

  test('unknown flags and extra arguments are usage errors', () => {
    const r = run('devices --frob');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ferry: Unknown option '--frob'/);
    assert.ok(r.stderr.endsWith(HELP_HINT));
    usage(run('whoami extra'), "unexpected argument 'extra'");
    usage(run('device approve'), 'expected 1 argument(s), got 0');
    usage(run('device approve a b'), 'expected 1 argument(s), got 2');
  });
});

describe('permissions', () => {
  /** What mayAct says for an operator-only user. */
  const refusal = (user: string, action: string) => `'${user}' may not run ${action}: no role grants it (roles operator: actions none)`;

  test('an operator is refused every action with the rule that refused it; each refusal is audited and nothing else happens', () => {
    store.addUser('olga', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    const op = ctx(as('olga'));
    const cases: [string, string, string | null][] = [
      ['token create', 'token.create', null], ['token ls', 'token.list', null], ['token rm abc', 'token.revoke', null],
      ['device approve x', 'device.approve', 'x'], ['device revoke x', 'device.revoke', 'x'], ['device rm x', 'device.remove', 'x'], ['device label x a=1', 'device.label', 'x'],
      [`user add bob --key ${keys[0]!.line.replace(/ /g, '_')}`, 'user.add', 'bob'], ['user rm admin', 'user.remove', 'admin'], ['user role admin operator', 'user.role', 'admin'],
      ['user key rm admin SHA256:x', 'user.key', 'admin'], ['users', 'user.list', null],
      ['role add r --devices * --logins pi', 'role.add', 'r'], ['role edit admin --logins pi', 'role.edit', 'admin'], ['role rm admin', 'role.remove', 'admin'], ['role ls', 'role.list', null],
      ['audit', 'audit.read', null], ['audit verify', 'audit.verify', null], ['audit export', 'audit.read', null],
    ];
    for (const [line, action] of cases) refused(run(line, op), refusal('olga', action));
    const rows = store.listAudit({ limit: 100 });
    assert.deepEqual(rows.map((a) => [a.actor, a.action, a.target, a.detail]), cases.map(([, action, target]) => ['olga', 'action.refused', target, { action, why: refusal('olga', action) }]));
    assert.deepEqual([store.countUsers(), store.listRoles().map((r) => r.name), store.listTokens().length], [2, ['admin', 'operator'], 0]);
    assert.deepEqual(changed, []);
  });

  test('permission comes before the checks that read the store: no device name leaks through a usage error', () => {
    store.addUser('olga', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    enrol('cam');
    refused(run('token create --name cam', ctx(as('olga'))), refusal('olga', 'token.create'));
    usage(run('token create --name cam'), "a device named 'cam' is enrolled already: 'device rm cam' first, or pick another name");
  });

  test('a user with no roles and an unknown user are refused alike', () => {
    store.addUser('nora', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    store.setUserRoles('nora', []);
    refused(run('users', ctx(as('nora'))), "'nora' may not run user.list: no role grants it (roles none)");
    refused(run('users', ctx(as('ghost'))), "'ghost' may not run user.list: no role grants it (roles none)");
  });

  test('a role that grants an action lets it through at once, and taking it away refuses the next call', () => {
    store.addUser('olga', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    ok(run('role add lister --devices * --logins pi --actions user.list,token.*'));
    refused(run('users', ctx(as('olga'))), refusal('olga', 'user.list'));
    ok(run('user role olga operator,lister'));
    ok(run('users', ctx(as('olga'))));
    ok(run('token ls', ctx(as('olga'))));
    refused(run('role ls', ctx(as('olga'))), "'olga' may not run role.list: no role grants it (roles lister: actions user.list,token.*; operator: actions none)");
    ok(run('role edit lister --actions none'));
    refused(run('users', ctx(as('olga'))), "'olga' may not run user.list: no role grants it (roles lister: actions none; operator: actions none)");
  });

  test('operators may run whoami, devices and ssh-config', () => {
    store.addUser('olga', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    const op = ctx(as('olga'));
    assert.deepEqual(ok(run('whoami', op)).stdout, `olga (operator) key ${keys[3]!.fingerprint}\n`);
    ok(run('devices', op));
    ok(run('ssh-config', op));
  });
});

describe('what a user sees is what its roles let it reach', () => {
  beforeEach(() => {
    enrol('b-dev', { approve: true, labels: ['site=berlin', 'env=dev'] });
    enrol('b-prod', { approve: true, labels: ['site=berlin', 'env=prod'] });
    enrol('paris', { approve: true, labels: ['site=paris'] });
    store.addUser('bo', ['operator'], [{ fingerprint: keys[3]!.fingerprint, line: keys[3]!.line }], NOW);
    ok(run(['role', 'add', 'berlin-ops', '--devices', 'site=berlin,env!=prod', '--logins', 'pi']));
    ok(run('user role bo berlin-ops'));
  });
  const names = (c: CommandContext, line = 'devices --json') => (jsonOf(run(line, c)) as { name: string }[]).map((d) => d.name);

  test('devices and ssh-config list only the devices the roles cover; device.list shows all', () => {
    assert.deepEqual(names(ctx(as('bo'))), ['b-dev']);
    assert.deepEqual(names(ctx()), ['b-dev', 'b-prod', 'paris']);
    assert.deepEqual(names(ctx(LOCAL)), ['b-dev', 'b-prod', 'paris']);
    for (const name of ['b-dev', 'b-prod', 'paris']) store.markOnline(name, NOW, '192.0.2.1:1', null);
    ok(run('role add lister --devices !site --logins pi --actions device.list'));
    ok(run('user role bo berlin-ops,lister'));
    assert.deepEqual(names(ctx(as('bo'))), ['b-dev', 'b-prod', 'paris']);
  });

  test('a user with no covering role sees no devices, and is told there are none', () => {
    ok(run(['role', 'edit', 'berlin-ops', '--devices', 'site=rome']));
    assert.deepEqual(run('devices', ctx(as('bo'))), { code: 0, stdout: '', stderr: "no devices yet: 'token create' makes an enrollment token\n" });
  });
});

describe('devices', () => {
  test('none yet: empty output and a hint on stderr; [] as json', () => {
    assert.deepEqual(run('devices'), { code: 0, stdout: '', stderr: "no devices yet: 'token create' makes an enrollment token\n" });
    assert.deepEqual(jsonOf(run('devices --json')), []);
  });

  test('a table and json with status, presence, last seen and labels', () => {
    enrol('cam', { approve: true, labels: ['site=berlin', 'floor=2'] });
    enrol('pump');
    store.markOnline('cam', NOW - 60_000, '192.0.2.1:4000', '0.1.0');
    store.markOnline('pump', NOW - 120_000, '192.0.2.2:4000', null);
    store.markOffline('pump', NOW - 30_000, 'keepalive timeout');

    const lines = ok(run('devices')).stdout.split('\n');
    assert.equal(lines.length, 4, 'header, two rows, final newline');
    assert.match(lines[0]!, /^NAME\s+STATUS\s+ONLINE\s+LAST SEEN\s+SINCE\s+ADDRESS\s+AGENT\s+LAST DISCONNECT\s+CLONED\?\s+LABELS$/);
    assert.deepEqual(lines[1]!.split(/\s{2,}/), ['cam', 'approved', 'online', 'now', new Date(NOW - 60_000).toISOString(), '192.0.2.1:4000', '0.1.0', '-', '?', 'site=berlin,floor=2']);
    assert.deepEqual(lines[2]!.split(/\s{2,}/), ['pump', 'pending', 'offline', new Date(NOW - 30_000).toISOString(), '-', '192.0.2.2:4000', '-', 'keepalive timeout', '?', '-']);
    assert.equal(lines[1]!.indexOf('approved'), lines[0]!.indexOf('STATUS'), 'columns line up');

    assert.deepEqual(jsonOf(run('devices --json')), [
      {
        name: 'cam', status: 'approved', online: true, connectedSince: new Date(NOW - 60_000).toISOString(), lastSeen: ISO_NOW,
        remoteAddress: '192.0.2.1:4000', agentVersion: '0.1.0', lastDisconnectReason: null, labels: { site: 'berlin', floor: '2' }, keyFingerprint: 'SHA256:cam',
        cloned: null, cloneAddresses: [],
      },
      {
        name: 'pump', status: 'pending', online: false, connectedSince: null, lastSeen: new Date(NOW - 30_000).toISOString(),
        remoteAddress: '192.0.2.2:4000', agentVersion: null, lastDisconnectReason: 'keepalive timeout', labels: {}, keyFingerprint: 'SHA256:pump',
        cloned: null, cloneAddresses: [],
      },
    ]);
  });

  test('a device whose identity two machines use is marked, when the running relay says so', () => {
    enrol('cam', { approve: true });
    enrol('pump');
    const c = { ...ctx(), cloneOf: (name: string) => (name === 'cam' ? { since: NOW, addresses: ['192.0.2.1', '192.0.2.7'], replaces: 2 } : null) };
    const lines = ok(run('devices', c)).stdout.split('\n');
    assert.match(lines[1]!, /^cam .* yes: 192\.0\.2\.1,192\.0\.2\.7 /);
    assert.match(lines[2]!, /^pump .* {2}- {2}/);
    const list = jsonOf(run('devices --json', c)) as { name: string; cloned: boolean; cloneAddresses: string[] }[];
    assert.deepEqual(list.map((d) => [d.name, d.cloned, d.cloneAddresses]), [['cam', true, ['192.0.2.1', '192.0.2.7']], ['pump', false, []]]);
  });

  test('a device that never connected shows never', () => {
    enrol('new');
    assert.deepEqual(ok(run('devices')).stdout.split('\n')[1]!.split(/\s{2,}/).slice(0, 4), ['new', 'pending', 'offline', 'never']);
  });
});

describe('token create', () => {
  test('default: one use, one hour, any name, waits for approval; the token redeems against the store', () => {
    const r = ok(run('token create'));
    const token = r.stdout.trim();
    assert.equal(r.stdout, token + '\n');
    const decoded = decodeToken(token);
    assert.ok('claims' in decoded, JSON.stringify(decoded));
    const { claims } = decoded;
    assert.deepEqual(claims.endpoints, [RELAY.publicAddress]);
    assert.equal(claims.fingerprint, RELAY.fingerprint);
    const expires = new Date(NOW + LIMITS.tokenDefaultTtlMs).toISOString();
    assert.equal(r.stderr, `token ${claims.id} for any device name (the agent gives --name), 1 use, expires ${expires}, waits for 'device approve'\n`
      + 'on the device, as root: FERRY_TOKEN=TOKEN ferry agent --state-dir /var/lib/ferry-agent\n');
    const device = store.redeemToken({ id: claims.id, secretHash: createHash('sha256').update(claims.secret).digest(), requestedName: 'x', fallbackName: null, keyFingerprint: 'SHA256:x', keyLine: 'l', now: NOW + 1 });
    assert.equal(device.status, 'pending');
    const [entry] = store.listAudit({ limit: 10 });
    assert.deepEqual(row(entry), { at: NOW, actor: 'admin', action: 'token.create', target: null, detail: { id: claims.id, expiresAt: NOW + LIMITS.tokenDefaultTtlMs, uses: 1, approve: false, labels: {} } });
  });

  test('every token is different', () => {
    const a = ok(run('token create')).stdout;
    const b = ok(run('token create')).stdout;
    assert.notEqual(a, b);
  });

  test('--json with name, labels, ttl and --approve', () => {
    const out = jsonOf(run('token create --name cam --label site=berlin --label floor=2 --ttl 7d --approve --json')) as Record<string, unknown>;
    const decoded = decodeToken(out.token as string);
    assert.ok('claims' in decoded);
    assert.deepEqual(out, {
      token: out.token, id: decoded.claims.id, expiresAt: new Date(NOW + 7 * 86_400_000).toISOString(), uses: 1, name: 'cam',
      labels: { site: 'berlin', floor: '2' }, approve: true, relay: RELAY.publicAddress, endpoints: [RELAY.publicAddress], fingerprint: RELAY.fingerprint,
    });
    const d = store.redeemToken({ id: decoded.claims.id, secretHash: createHash('sha256').update(decoded.claims.secret).digest(), requestedName: null, fallbackName: 'host', keyFingerprint: 'SHA256:c', keyLine: 'l', now: NOW });
    assert.deepEqual([d.name, d.status, d.labels], ['cam', 'approved', { site: 'berlin', floor: '2' }]);
  });

  test('human output for a named, approving token and for several uses', () => {
    assert.match(ok(run('token create --name cam --approve')).stderr, /^token [0-9a-f]{16} for device 'cam', 1 use, expires .*, approved on enrollment\n/);
    assert.match(ok(run('token create --uses 5 --ttl 30m')).stderr, new RegExp(`, 5 uses, expires ${new Date(NOW + 1_800_000).toISOString()}, `));
  });

  test('--ttl must be a positive duration no longer than the maximum', () => {
    usage(run('token create --ttl abc'), "--ttl 'abc' is not a duration like 15m, 1h or 7d");
    usage(run('token create --ttl 0s'), "--ttl '0s' is not a duration like 15m, 1h or 7d");
    usage(run('token create --ttl 31d'), '--ttl is longer than the longest allowed (30d)');
    ok(run('token create --ttl 30d'));
  });

  test('--uses must be a whole number from 1 to 100000', () => {
    for (const uses of ['0', '-1', '1.5', 'abc', '100001', '']) usage(run(['token', 'create', `--uses=${uses}`]), `--uses '${uses}' must be a whole number from 1 to 100000`);
    ok(run('token create --uses 100000'));
  });

  test('--name must be a free device name, with one use', () => {
    usage(run('token create --name Cam'), "device name 'Cam' has upper-case letters; OpenSSH lowercases host names, so use 'cam'");
    usage(run('token create --name=-x'), "device name '-x' is not a DNS label: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'");
    enrol('cam');
    usage(run('token create --name cam'), "a device named 'cam' is enrolled already: 'device rm cam' first, or pick another name");
    usage(run('token create --name other --uses 2'), '--name fixes one device name, so it goes with a single use (drop --uses)');
  });

  test('bad labels, and every problem at once', () => {
    usage(run('token create --label nokv'), "label 'nokv' has no '=': write key=value");
    usage(run('token create --ttl x --uses 0 --name Bad_ --label A=1 --label ok=1 --label b'), [
      "--ttl 'x' is not a duration like 15m, 1h or 7d",
      "--uses '0' must be a whole number from 1 to 100000",
      "device name 'Bad_' is not a DNS label: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'",
      '--name fixes one device name, so it goes with a single use (drop --uses)',
      "label key 'A' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
      "label 'b' has no '=': write key=value",
    ].join('\n'));
    assert.equal(store.listAudit({ limit: 10 }).length, 0, 'no token was made');
  });
});

describe('device approve, revoke, rm', () => {
  test('approve a pending device: human and json, audited, live link told', () => {
    enrol('cam');
    assert.deepEqual(run('device approve cam'), { code: 0, stdout: "device 'cam' approved\n", stderr: '' });
    assert.equal(store.getDevice('cam')?.status, 'approved');
    assert.deepEqual(changed, ['cam']);
    assert.deepEqual(jsonOf(run('device approve cam --json')), { name: 'cam', result: 'approved' });
    const last = store.listAudit({ device: 'cam', limit: 1 })[0]!;
    assert.deepEqual([last.actor, last.action, last.target, last.at], ['admin', 'device.approve', 'cam', NOW]);
  });

  test('revoke, then approving again is refused', () => {
    enrol('cam', { approve: true });
    assert.deepEqual(run('device revoke cam'), { code: 0, stdout: "device 'cam' revoked\n", stderr: '' });
    assert.equal(store.getDevice('cam')?.status, 'revoked');
    assert.deepEqual(changed, ['cam']);
    refused(run('device approve cam'), "device 'cam' is revoked; a revoked device cannot be approved again: 'device rm cam' and enrol it anew");
    assert.equal(store.getDevice('cam')?.status, 'revoked');
    assert.deepEqual(changed, ['cam'], 'a refusal changes nothing');
    assert.deepEqual(jsonOf(run('device revoke cam --json')), { name: 'cam', result: 'revoked' });
  });

  test('rm forgets the device; its name can be used again', () => {
    enrol('cam');
    assert.deepEqual(run('device rm cam'), { code: 0, stdout: "device 'cam' removed\n", stderr: '' });
    assert.equal(store.getDevice('cam'), null);
    assert.deepEqual(changed, ['cam']);
    assert.deepEqual(store.listAudit({ device: 'cam', limit: 10 }).map((a) => a.action), ['token.create', 'device.remove']);
    enrol('cam', { key: 'SHA256:new' });
    assert.deepEqual(jsonOf(run('device rm cam --json')), { name: 'cam', result: 'removed' });
  });

  test('an unknown device is not found; an unknown verb is a usage error', () => {
    for (const verb of ['approve', 'revoke', 'rm']) refused(run(`device ${verb} ghost`), "no device named 'ghost'; 'devices' lists them");
    enrol('cam');
    usage(run('device frob cam'), "unknown device command 'frob': use approve, revoke, rm or label", true);
    assert.deepEqual(changed, []);
  });
});

describe('user add, rm, users', () => {
  test('add an operator (default role) and a user with two roles and two keys: human and json', () => {
    assert.deepEqual(run(['user', 'add', 'bob', '--key', `${keys[0]!.line} bob@laptop`]), { code: 0, stdout: "user 'bob' added with role operator\n", stderr: '' });
    assert.deepEqual(store.getUser('bob')?.keys, [{ fingerprint: keys[0]!.fingerprint, line: keys[0]!.line }]);
    assert.deepEqual(jsonOf(run(['user', 'add', 'carol', '--key', keys[1]!.line, '--key', keys[2]!.line, '--role', 'admin,operator', '--json'])),
      { name: 'carol', role: 'admin', roles: ['admin', 'operator'], keys: [keys[1]!.fingerprint, keys[2]!.fingerprint] });
    assert.deepEqual(store.getUser('carol')?.roles, ['admin', 'operator']);
    const entry = store.listAudit({ device: 'carol', limit: 1 })[0]!;
    assert.deepEqual([entry.action, entry.detail], ['user.add', { roles: ['admin', 'operator'], keys: [keys[1]!.fingerprint, keys[2]!.fingerprint] }]);
    assert.deepEqual(changed, ['(users)', '(users)']);
  });

  test('every problem at once: name, reserved name, role, missing or bad key', () => {
    usage(run('user add Bob --role root'), [
      "user name 'Bob' is invalid: use up to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or '_'",
      "no role named 'root'; 'role ls' lists them (admin, operator)",
      '--key is required: the user\'s public key, e.g. --key "$(cat ~/.ssh/id_ed25519.pub)"',
    ].join('\n'));
    usage(run(['user', 'add', 'ferry-agent', '--key', RSA_LINE]), [
      "user name 'ferry-agent' is reserved: names starting with 'ferry-' belong to agents",
      "--key: key type ssh-rsa is not accepted: ferry uses Ed25519 keys only (make one with 'ssh-keygen -t ed25519')",
    ].join('\n'));
    usage(run(['user', 'add', 'bob', '--key', 'garbage']), "--key: not an OpenSSH public key: expected one line like 'ssh-ed25519 AAAA… comment'");
    usage(run(['user', 'add', '--key', keys[0]!.line]), 'expected 1 argument(s), got 0');
    usage(run(['user', 'add', 'bob', '--key', keys[0]!.line, '--role', 'operator,operator']), "role 'operator' is given twice");
    assert.equal(store.countUsers(), 1);
  });

  test('conflicts with existing users and keys are refused', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    assert.equal(run(['user', 'add', 'bob', '--key', keys[1]!.line]).code, 1);
    assert.equal(run(['user', 'add', 'eve', '--key', adminKey.line]).code, 1);
    assert.equal(store.getUser('eve'), null);
  });

  test('rm removes an operator: human and json', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    ok(run(['user', 'add', 'dan', '--key', keys[1]!.line]));
    assert.deepEqual(run('user rm bob'), { code: 0, stdout: "user 'bob' removed\n", stderr: '' });
    assert.equal(store.getUser('bob'), null);
    assert.deepEqual(jsonOf(run('user rm dan --json')), { name: 'dan', result: 'removed' });
    assert.deepEqual(store.listAudit({ device: 'bob', limit: 10 }).map((a) => a.action), ['user.add', 'user.remove']);
  });

  test('nobody removes themselves, unknown users are not found', () => {
    refused(run('user rm admin'), 'you cannot remove yourself; ask another admin');
    refused(run('user rm ghost'), "no user named 'ghost'; 'users' lists them");
    assert.equal(store.countUsers(), 1);
  });

  test('users: table and json, with roles', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line, '--key', keys[1]!.line]));
    const fps = [keys[0]!.fingerprint, keys[1]!.fingerprint].sort();
    const lines = ok(run('users')).stdout.split('\n');
    assert.match(lines[0]!, /^NAME\s+ROLES\s+KEYS$/);
    assert.deepEqual(lines[1]!.split(/\s{2,}/), ['admin', 'admin', adminKey.fingerprint]);
    assert.deepEqual(lines[2]!.split(/\s{2,}/), ['bob', 'operator', fps.join(' ')]);
    assert.equal(lines[3], '');
    assert.deepEqual(jsonOf(run('users --json')), [
      { name: 'admin', role: 'admin', roles: ['admin'], createdAt: new Date(NOW - 1000).toISOString(), keys: [adminKey.fingerprint] },
      { name: 'bob', role: 'operator', roles: ['operator'], createdAt: ISO_NOW, keys: fps },
    ]);
  });
});

describe('user role, user key', () => {
  beforeEach(() => { ok(run(['user', 'add', 'bob', '--key', keys[0]!.line])); changed = []; });

  test('user role replaces the roles: human and json, audited, live connections told', () => {
    assert.deepEqual(run('user role bob admin,operator'), { code: 0, stdout: "user 'bob' now has roles admin, operator\n", stderr: '' });
    assert.deepEqual(store.getUser('bob')?.roles, ['admin', 'operator']);
    assert.deepEqual(jsonOf(run('user role bob operator --json')), { name: 'bob', roles: ['operator'] });
    assert.deepEqual(row(store.listAudit({ action: 'user.role', limit: 1 })[0]), { at: NOW, actor: 'admin', action: 'user.role', target: 'bob', detail: { was: ['admin', 'operator'], roles: ['operator'] } });
    assert.deepEqual(changed, ['(users)', '(users)']);
  });

  test('user role: unknown user or role, and bad usage', () => {
    refused(run('user role ghost operator'), "no user named 'ghost'; 'users' lists them");
    usage(run('user role bob nope'), "no role named 'nope'; 'role ls' lists them (admin, operator)");
    usage(run('user role bob'), 'expected 2 argument(s), got 1');
    usage(run('user role bob ,'), 'give at least one role');
  });

  test('user key add and rm rotate a key: human and json, audited', () => {
    assert.deepEqual(run(['user', 'key', 'add', 'bob', keys[1]!.line]), { code: 0, stdout: `user 'bob': key ${keys[1]!.fingerprint} added\n`, stderr: '' });
    assert.deepEqual(store.getUser('bob')?.keys.map((k) => k.fingerprint).sort(), [keys[0]!.fingerprint, keys[1]!.fingerprint].sort());
    assert.deepEqual(jsonOf(run(['user', 'key', 'rm', 'bob', keys[0]!.fingerprint, '--json'])), { name: 'bob', key: keys[0]!.fingerprint, result: 'removed' });
    assert.deepEqual(store.getUser('bob')?.keys.map((k) => k.fingerprint), [keys[1]!.fingerprint]);
    assert.deepEqual(store.listAudit({ device: 'bob', limit: 10 }).map((a) => [a.action, a.detail]).slice(1), [
      ['user.key.add', { key: keys[1]!.fingerprint }], ['user.key.remove', { key: keys[0]!.fingerprint }],
    ]);
    assert.deepEqual(changed, ['(users)', '(users)']);
  });

  test('user key: bad key, unknown user or fingerprint, a key in use', () => {
    usage(run(['user', 'key', 'add', 'bob', 'garbage']), "--key: not an OpenSSH public key: expected one line like 'ssh-ed25519 AAAA… comment'");
    refused(run(['user', 'key', 'add', 'ghost', keys[1]!.line]), "no user named 'ghost'; 'users' lists them");
    refused(run(['user', 'key', 'rm', 'bob', 'SHA256:nope']), "user 'bob' has no key SHA256:nope; 'users' lists each user's key fingerprints");
    assert.equal(run(['user', 'key', 'add', 'bob', adminKey.line]).code, 1, "admin's key");
    usage(run('user key add bob'), 'expected 2 argument(s), got 1');
  });
});

describe('role add, edit, rm, ls', () => {
  test('add a berlin-ops role: selectors whole, lists by comma, forwards normalized; human and json; audited', () => {
    assert.deepEqual(run(['role', 'add', 'berlin-ops', '--devices', 'site=berlin,env!=prod', '--devices', 'kind = cam', '--logins', 'pi,admin', '--forward', '127.0.0.1:8080,[FD00::/64]:22', '--actions', 'device.approve,audit.*']), {
      code: 0, stderr: '',
      stdout: "role 'berlin-ops': devices site=berlin,env!=prod or kind=cam; logins pi,admin; forward 127.0.0.1:8080,[fd00::/64]:22; actions device.approve,audit.*\n",
    });
    const role = store.getRole('berlin-ops')!;
    assert.deepEqual([role.devices, role.logins, role.forwards, role.actions], [['site=berlin,env!=prod', 'kind=cam'], ['pi', 'admin'], ['127.0.0.1:8080', '[fd00::/64]:22'], ['device.approve', 'audit.*']]);
    assert.deepEqual(jsonOf(run('role add viewers --devices * --logins viewer --json')), { name: 'viewers', devices: ['*'], logins: ['viewer'], forwards: [], actions: [] });
    assert.deepEqual(row(store.listAudit({ action: 'role.add', limit: 1 })[0]), { at: NOW, actor: 'admin', action: 'role.add', target: 'viewers', detail: { name: 'viewers', devices: ['*'], logins: ['viewer'], forwards: [], actions: [] } });
  });

  test('role add: every problem at once, and an existing name', () => {
    usage(run(['role', 'add', 'Bad', '--devices', 'Site=x', '--logins', '1pi', '--forward', 'nowhere', '--actions', 'frob']), [
      "role name 'Bad' is invalid: use up to 32 of a-z, 0-9, '_' and '-', starting with a letter",
      "device selector 'Site=x': 'Site=x' is not key=value, key!=value, key or !key (keys: lowercase letters, digits, '_', '.', '/', '-')",
      "login '1pi' is not a user name (letters, digits, '_', '.', '-', up to 32) or '*'",
      "forward target 'nowhere' must be HOST:PORT, HOST:*, ADDRESS/PREFIX:PORT (e.g. 10.0.0.0/24:443; [fd00::/64]:22 for IPv6) or '*'",
      actionProblemText('frob'),
    ].join('\n'));
    usage(run('role add r'), ["give --devices: '*' for every device, a selector like site=berlin,env!=prod, or none", "give --logins: login names on the devices (pi,root), '*', or none"].join('\n'));
    // A role that reaches nothing, for an auditor: none is the empty list.
    assert.equal(ok(run('role add auditor --devices none --logins none --actions audit.*')).stdout, "role 'auditor': devices none; logins none; forward none; actions audit.*\n");
    assert.deepEqual(store.getRole('auditor')?.devices, []);
    store.removeRole('auditor');
    refused(run('role add operator --devices * --logins pi'), "a role named 'operator' exists already: 'role edit operator' changes it");
    assert.deepEqual(store.listRoles().map((r) => r.name), ['admin', 'operator']);
  });

  test('role edit changes only what is given; --forward none; audited with before and after; live connections told', () => {
    ok(run(['role', 'add', 'ops', '--devices', 'site=berlin', '--logins', 'pi', '--forward', '*']));
    changed = [];
    assert.deepEqual(jsonOf(run(['role', 'edit', 'ops', '--logins', 'pi,root', '--forward', 'none', '--json'])), { name: 'ops', devices: ['site=berlin'], logins: ['pi', 'root'], forwards: [], actions: [] });
    assert.deepEqual(store.listAudit({ action: 'role.edit', limit: 1 })[0]!.detail, {
      was: { devices: ['site=berlin'], logins: ['pi'], forwards: ['*'], actions: [] }, now: { devices: ['site=berlin'], logins: ['pi', 'root'], forwards: [], actions: [] },
    });
    assert.deepEqual(changed, ['(users)']);
    refused(run('role edit ghost --logins pi'), "no role named 'ghost'; 'role ls' lists them");
    usage(run('role edit ops'), 'give at least one of --devices, --logins, --forward, --actions: what to change');
  });

  test('role rm removes the role and its bindings; role ls lists roles with their users', () => {
    ok(run(['role', 'add', 'ops', '--devices', 'site=berlin', '--logins', 'pi']));
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line, '--role', 'ops,operator']));
    const list = jsonOf(run('role ls --json')) as { name: string; users: string[]; createdAt: string }[];
    assert.deepEqual(list.map((r) => [r.name, r.users]), [['admin', ['admin']], ['operator', ['bob']], ['ops', ['bob']]]);
    const lines = ok(run('role ls')).stdout.split('\n');
    assert.match(lines[0]!, /^NAME\s+DEVICES\s+LOGINS\s+FORWARD\s+ACTIONS\s+USERS$/);
    assert.deepEqual(lines[3]!.split(/\s{2,}/), ['ops', 'site=berlin', 'pi', 'none', 'none', 'bob']);
    assert.deepEqual(run('role rm ops'), { code: 0, stdout: "role 'ops' removed (it was bound to bob)\n", stderr: '' });
    assert.deepEqual(store.getUser('bob')?.roles, ['operator']);
    assert.deepEqual(row(store.listAudit({ action: 'role.remove', limit: 1 })[0]), { at: NOW, actor: 'admin', action: 'role.remove', target: 'ops', detail: { users: ['bob'] } });
    refused(run('role rm ops'), "no role named 'ops'; 'role ls' lists them");
  });
});

describe('nobody can manage access: the guard', () => {
  const NOBODY = 'this would leave nobody who can manage access (no user with a key whose roles grant role.edit and user.role): give such a role to another user first';

  test('the last user who can manage access cannot lose that, by any route; nothing changes', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    const local = ctx(LOCAL);
    refused(run('user role admin operator', local), NOBODY);
    refused(run('role edit admin --actions device.*', local), NOBODY);
    refused(run('role rm admin', local), NOBODY);
    refused(run(['user', 'key', 'rm', 'admin', adminKey.fingerprint], local), NOBODY);
    refused(run('user rm admin', local), NOBODY);
    assert.deepEqual([store.getUser('admin')?.roles, store.getUser('admin')?.keys.length, store.getRole('admin')?.actions], [['admin'], 1, ['*']]);
    assert.deepEqual(store.listAudit({ limit: 100 }).map((a) => a.action), ['user.add'], 'no change, and no audit row for one');
  });

  test('once another user can, the change goes through', () => {
    ok(run(['role', 'add', 'access', '--devices', '*', '--logins', 'pi', '--actions', 'role.edit,user.role']));
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line, '--role', 'access']));
    ok(run('user role admin operator', ctx(LOCAL)));
    assert.deepEqual(store.getUser('admin')?.roles, ['operator']);
    // A role with only one of the two does not count.
    refused(run('role edit access --actions role.edit,user.list', ctx(as('bob'))), NOBODY);
    assert.deepEqual(store.getRole('access')?.actions, ['role.edit', 'user.role']);
  });
});

describe('audit', () => {
  beforeEach(() => {
    store.audit({ at: NOW - 3 * 3_600_000, actor: 'admin', action: 'device.approve', target: 'old', detail: {} });
    store.audit({ at: NOW - 30 * 60_000, actor: 'admin', action: 'device.revoke', target: 'cam', detail: { why: 'lost' } });
    store.audit({ at: NOW - 60_000, actor: 'bob', action: 'token.create', target: null, detail: { id: 't1' } });
  });

  test('human output, oldest first; empty output when nothing matches', () => {
    assert.deepEqual(run('audit'), {
      code: 0, stderr: '', stdout: [
        `${new Date(NOW - 3 * 3_600_000).toISOString()}  admin  device.approve old`,
        `${new Date(NOW - 30 * 60_000).toISOString()}  admin  device.revoke cam {"why":"lost"}`,
        `${new Date(NOW - 60_000).toISOString()}  bob  token.create {"id":"t1"}`,
      ].join('\n') + '\n',
    });
    assert.deepEqual(run('audit --device nothing'), { code: 0, stdout: '', stderr: '' });
  });

  test('--json with dates', () => {
    const list = jsonOf(run('audit --device cam --json')) as Record<string, unknown>[];
    assert.equal(list.length, 1);
    const { id, prevHash, hash, ...rest } = list[0]!;
    assert.deepEqual(rest, { at: new Date(NOW - 30 * 60_000).toISOString(), actor: 'admin', action: 'device.revoke', target: 'cam', detail: { why: 'lost' }, source: 'relay' });
    assert.deepEqual([typeof id, typeof prevHash, typeof hash], ['number', 'string', 'string']);
  });

  test('--since takes a duration before now or a date', () => {
    const actions = (line: string) => (jsonOf(run(`${line} --json`)) as { action: string }[]).map((a) => a.action);
    assert.deepEqual(actions('audit --since 1h'), ['device.revoke', 'token.create']);
    assert.deepEqual(actions('audit --since 5m'), ['token.create']);
    assert.deepEqual(actions('audit --since 1d'), ['device.approve', 'device.revoke', 'token.create']);
    assert.deepEqual(actions(`audit --since ${new Date(NOW - 31 * 60_000).toISOString()}`), ['device.revoke', 'token.create']);
    assert.deepEqual(actions('audit --since 2026-01-31T11:50Z'), ['token.create']);
    assert.deepEqual(actions('audit --limit 2'), ['device.revoke', 'token.create'], '--limit keeps the newest');
  });

  test('bad --since and --limit are usage errors, reported together', () => {
    usage(run('audit --since yesterday-ish'), "--since 'yesterday-ish' is neither a duration (1h) nor a date (2026-01-31T12:00Z)");
    usage(run('audit --since soon --limit 0'), "--since 'soon' is neither a duration (1h) nor a date (2026-01-31T12:00Z)\n--limit must be a whole number from 1 to 10000");
    for (const limit of ['0', '10001', '2.5', 'x']) usage(run(['audit', '--limit', limit]), '--limit must be a whole number from 1 to 10000');
  });
});

describe('audit filters, verify and export', () => {
  beforeEach(() => {
    store.audit({ at: NOW - 3 * 3_600_000, actor: 'admin', action: 'reach.start', target: 'cam', detail: {} });
    store.audit({ at: NOW - 2 * 3_600_000, actor: 'bob', action: 'reach.end', target: 'cam', detail: { bytesIn: 1 } });
    store.audit({ at: NOW - 3_600_000, actor: 'bob', action: 'ssh.session.end', target: 'cam', detail: { exit: 3 }, source: 'device' });
    store.audit({ at: NOW - 60_000, actor: 'bob', action: 'token.create', target: null, detail: {} });
  });
  const actions = (line: string) => (jsonOf(run(`${line} --json`)) as { action: string }[]).map((a) => a.action);

  test('--until, --user and --action (exact or GROUP.*) narrow the rows; device rows are marked', () => {
    assert.deepEqual(actions('audit --user bob'), ['reach.end', 'ssh.session.end', 'token.create']);
    assert.deepEqual(actions('audit --action reach.*'), ['reach.start', 'reach.end']);
    assert.deepEqual(actions('audit --action reach.end'), ['reach.end']);
    assert.deepEqual(actions('audit --until 90m'), ['reach.start', 'reach.end']);
    assert.deepEqual(actions('audit --since 150m --until 30m --user bob --device cam'), ['reach.end', 'ssh.session.end']);
    assert.match(ok(run('audit --action ssh.*')).stdout, /^\S+ {2}bob {2}ssh\.session\.end cam \(device\) \{"exit":3\}\n$/);
    usage(run('audit --since 1h --until 2h'), '--until is before --since: nothing can match');
    usage(run('audit --until never'), "--until 'never' is neither a duration (1h) nor a date (2026-01-31T12:00Z)");
  });

  test('audit verify: intact, then the row changed in the file is named; --json; exit 1 when broken', () => {
    const intact = ok(run('audit verify'));
    assert.match(intact.stdout, /^audit log intact: 4 rows, head [0-9a-f]{64}\n$/);
    assert.deepEqual((jsonOf(run('audit verify --json')) as { ok: boolean; rows: number }), { ...(jsonOf(run('audit verify --json')) as object), ok: true, rows: 4 });
    const id = store.listAudit({ action: 'reach.end', limit: 1 })[0]!.id;
    const db = new Database(join(dir, `store-${fileCount}.db`));
    db.prepare('UPDATE audit SET actor = ? WHERE id = ?').run('mallory', id);
    db.close();
    const broken = run('audit verify');
    assert.equal(broken.code, 1);
    assert.equal(broken.stdout, '');
    assert.equal(broken.stderr, `ferry: audit log broken: row ${id} was changed: its hash does not match its content\n`);
    const j = run('audit verify --json');
    assert.equal(j.code, 1);
    assert.deepEqual((JSON.parse(j.stdout) as { ok: boolean; badId: number }), { ...(JSON.parse(j.stdout) as object), ok: false, badId: id });
  });

  test('audit export: every row as one JSON line, oldest first; --since', () => {
    const all = ok(run('audit export')).stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { action: string; source: string; hash: string });
    assert.deepEqual(all.map((a) => [a.action, a.source]), [['reach.start', 'relay'], ['reach.end', 'relay'], ['ssh.session.end', 'device'], ['token.create', 'relay']]);
    assert.ok(all.every((a) => /^[0-9a-f]{64}$/.test(a.hash)));
    assert.deepEqual(ok(run('audit export --since 90m')).stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { action: string }).action), ['ssh.session.end', 'token.create']);
    usage(run('audit export --since x'), "--since 'x' is neither a duration (1h) nor a date (2026-01-31T12:00Z)");
    // The rows come one by one as they are read, not as one string: the log may not fit in memory.
    const r = runCommand(ctx(), ['audit', 'export']);
    assert.deepEqual({ ...r, more: undefined }, { code: 0, stdout: '', stderr: '', more: undefined });
    assert.deepEqual([...r.more!].map((c) => (JSON.parse(c) as { action: string }).action), all.map((a) => a.action));
  });
});

describe('help names this relay and the caller', () => {
  test('help shows the command line to paste, with the relay address and the user', () => {
    const help = ok(run('help')).stdout;
    assert.match(help, /^ferry relay commands \(ssh -p 2222 admin@relay\.example\.com COMMAND, or ferry COMMAND --data-dir DIR on the relay host\):/);
    const asOlga = ok(run('help', ctx(as('olga')))).stdout;
    assert.match(asOlga, /\(ssh -p 2222 olga@relay\.example\.com COMMAND,/);
    const local = ok(run('help', ctx(LOCAL))).stdout;
    assert.match(local, /\(ssh -p 2222 USER@relay\.example\.com COMMAND,/, 'a local admin is no relay user');
    assert.doesNotMatch(help, /USER@RELAY/);
  });
});

describe('devices filters', () => {
  beforeEach(() => {
    enrol('cam', { approve: true, labels: ['site=berlin', 'floor=2'] });
    enrol('pump', { labels: ['site=berlin'] });
    enrol('gate', { labels: ['site=paris'] });
    store.markOnline('cam', NOW - 60_000, '192.0.2.1:4000', '0.1.0');
    store.markOnline('gate', NOW - 60_000, '192.0.2.3:4000', '0.1.0');
  });
  const names = (line: string) => (jsonOf(run(`${line} --json`)) as { name: string }[]).map((d) => d.name);

  test('--label k=v keeps devices with that label; repeated, all must match', () => {
    assert.deepEqual(names('devices --label site=berlin'), ['cam', 'pump']);
    assert.deepEqual(names('devices --label site=berlin --label floor=2'), ['cam']);
    assert.deepEqual(names('devices --label site=rome'), []);
    assert.deepEqual(names('devices --label floor=2 --label site=paris'), []);
  });

  test('--online and --offline, alone and with labels; the table is filtered too', () => {
    assert.deepEqual(names('devices --online'), ['cam', 'gate']);
    assert.deepEqual(names('devices --offline'), ['pump']);
    assert.deepEqual(names('devices --online --label site=berlin'), ['cam']);
    const lines = ok(run('devices --offline')).stdout.split('\n');
    assert.deepEqual([lines.length, lines[1]!.split(/\s{2,}/)[0]], [3, 'pump']);
  });

  test('nothing matching: empty output and a hint that says so', () => {
    assert.deepEqual(run('devices --label site=rome'), { code: 0, stdout: '', stderr: 'no device matches --label site=rome\n' });
    assert.deepEqual(run('devices --offline --label site=paris'), { code: 0, stdout: '', stderr: 'no device matches --offline --label site=paris\n' });
  });

  test('bad filters are usage errors, every one at once', () => {
    usage(run('devices --online --offline'), '--online and --offline exclude each other: give one');
    usage(run('devices --label site --label A=1'), [
      "label 'site' has no '=': write key=value",
      "label key 'A' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
    ].join('\n'));
  });
});

describe('device label', () => {
  test('sets and removes labels: human and json, audited', () => {
    enrol('cam', { labels: ['site=berlin', 'floor=2'] });
    assert.deepEqual(run(['device', 'label', 'cam', 'site=paris', 'rack=a 1', 'floor-']), { code: 0, stdout: "device 'cam' labels: site=paris,rack=a 1\n", stderr: '' });
    assert.deepEqual(store.getDevice('cam')?.labels, { site: 'paris', rack: 'a 1' });
    assert.deepEqual(jsonOf(run('device label cam site- --json')), { name: 'cam', labels: { rack: 'a 1' } });
    assert.deepEqual(run('device label cam rack-'), { code: 0, stdout: "device 'cam' labels: -\n", stderr: '' });
    const entries = store.listAudit({ device: 'cam', limit: 10 }).filter((a) => a.action === 'device.label');
    assert.deepEqual(entries.map((a) => [a.actor, a.detail]), [
      ['admin', { set: { site: 'paris', rack: 'a 1' }, removed: ['floor'] }],
      ['admin', { set: {}, removed: ['site'] }],
      ['admin', { set: {}, removed: ['rack'] }],
    ]);
    assert.deepEqual(changed, ['cam', 'cam', 'cam'], 'labels decide which roles cover the device: live connections follow');
  });

  test('removing a label the device does not have is fine; a value may contain = and end in -', () => {
    enrol('cam');
    assert.deepEqual(jsonOf(run('device label cam ghost- eq=a=b- --json')), { name: 'cam', labels: { eq: 'a=b-' } });
  });

  test('bad labels, a key both set and removed, and too many labels are usage errors, every one at once', () => {
    enrol('cam');
    usage(run('device label cam'), 'give at least one label: key=value to set it, key- to remove it');
    usage(run('device label cam A=1 nokv B- x=1 x-'), [
      "label key 'A' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
      "label 'nokv' has no '=': write key=value",
      "label key 'B' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
      "label 'x' is both set and removed",
    ].join('\n'));
    const many = Array.from({ length: LIMITS.maxLabels }, (_, i) => `k${i}=v`);
    ok(run(['device', 'label', 'cam', ...many]));
    usage(run('device label cam one=more'), `too many labels: at most ${LIMITS.maxLabels}`);
    assert.equal(store.listAudit({ device: 'cam', limit: 10 }).filter((a) => a.action === 'device.label').length, 1);
  });

  test('an unknown device is not found', () => {
    refused(run('device label ghost a=1'), "no device named 'ghost'; 'devices' lists them");
  });
});

describe('token ls and rm', () => {
  test('ls lists usable tokens, newest first, never the secret; --all adds the rest with their state', () => {
    const first = ok(run('token create --name cam --label site=berlin --approve --json'));
    const one = JSON.parse(first.stdout) as { id: string; token: string };
    const two = jsonOf(run('token create --uses 3 --ttl 2h --json', ctx(ADMIN, NOW + 1000))) as { id: string; token: string };
    const expired = jsonOf(run('token create --ttl 1m --json', ctx(ADMIN, NOW - 120_000))) as { id: string };
    const later = ctx(ADMIN, NOW + 2000);
    const list = jsonOf(run('token ls --json', later)) as Record<string, unknown>[];
    assert.deepEqual(list, [
      { id: two.id, name: null, labels: {}, usesLeft: 3, expiresAt: new Date(NOW + 1000 + 7_200_000).toISOString(), createdBy: 'admin', createdAt: new Date(NOW + 1000).toISOString(), approve: false, state: 'usable', revokedAt: null },
      { id: one.id, name: 'cam', labels: { site: 'berlin' }, usesLeft: 1, expiresAt: new Date(NOW + 3_600_000).toISOString(), createdBy: 'admin', createdAt: ISO_NOW, approve: true, state: 'usable', revokedAt: null },
    ]);
    const text = ok(run('token ls', later));
    const lines = text.stdout.split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+LABELS\s+USES LEFT\s+EXPIRES\s+CREATED BY\s+APPROVE\s+STATE$/);
    assert.deepEqual(lines[2]!.split(/\s{2,}/), [one.id, 'cam', 'site=berlin', '1', new Date(NOW + 3_600_000).toISOString(), 'admin', 'yes', 'usable']);
    for (const t of [one, two]) {
      const secret = (decodeToken(t.token) as { claims: { secret: string } }).claims.secret;
      assert.ok(!text.stdout.includes(secret) && !JSON.stringify(list).includes(secret), 'no secret in the listing');
    }
    const all = jsonOf(run('token ls --all --json', later)) as { id: string; state: string }[];
    assert.deepEqual(all.map((t) => [t.id, t.state]), [[two.id, 'usable'], [one.id, 'usable'], [expired.id, 'expired']]);
  });

  test('no tokens: empty output and a hint', () => {
    assert.deepEqual(run('token ls'), { code: 0, stdout: '', stderr: "no usable tokens ('token ls --all' shows expired, used-up and revoked ones)\n" });
    assert.deepEqual(run('token ls --all'), { code: 0, stdout: '', stderr: "no tokens yet: 'token create' makes one\n" });
    assert.deepEqual(jsonOf(run('token ls --all --json')), []);
  });

  test('rm kills a token: enrolling with it is refused as revoked; audited; human and json', () => {
    const t = jsonOf(run('token create --uses 2 --json')) as { id: string; token: string };
    const { claims } = decodeToken(t.token) as { claims: { id: string; secret: string } };
    assert.deepEqual(run(['token', 'rm', t.id], ctx(ADMIN, NOW + 10)), { code: 0, stdout: `token ${t.id} revoked: it enrols no more devices\n`, stderr: '' });
    assert.throws(() => store.redeemToken({ id: claims.id, secretHash: createHash('sha256').update(claims.secret).digest(), requestedName: 'x', fallbackName: null, keyFingerprint: 'SHA256:x', keyLine: 'l', now: NOW + 20 }),
      /this enrollment token was revoked at .* \(token rm\): ask an admin for a new one/);
    const entry = store.listAudit({ limit: 1 })[0]!;
    assert.deepEqual([entry.actor, entry.action, entry.target, entry.detail], ['admin', 'token.revoke', null, { id: t.id }]);
    assert.deepEqual(jsonOf(run('token ls --json')), []);
    assert.deepEqual((jsonOf(run('token ls --all --json')) as { state: string; revokedAt: string }[]).map((x) => [x.state, x.revokedAt]), [['revoked', new Date(NOW + 10).toISOString()]]);
    const t2 = jsonOf(run('token create --json')) as { id: string };
    assert.deepEqual(jsonOf(run(['token', 'rm', t2.id, '--json'])), { id: t2.id, result: 'revoked' });
  });

  test('rm of an unknown or revoked token is refused; a token id is required', () => {
    refused(run('token rm 0123456789abcdef'), "no token with id '0123456789abcdef'; 'token ls --all' lists them");
    const t = jsonOf(run('token create --json')) as { id: string };
    ok(run(['token', 'rm', t.id]));
    refused(run(['token', 'rm', t.id]), `token ${t.id} was revoked already`);
    usage(run('token rm'), 'expected 1 argument(s), got 0');
  });
});

describe('a change and its audit row are written together', () => {
  /** The store, but every audit write fails as a full disk would. */
  function failingAudit(): Store {
    return new Proxy(store, {
      get(target, prop) {
        if (prop === 'audit') return () => { throw new Error('disk I/O error'); };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  test('when the audit row cannot be written, the change is not kept either', () => {
    enrol('cam', { approve: true });
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    const tokensBefore = store.listTokens().length;
    changed = [];
    const c = { ...ctx(), store: failingAudit() };
    ok(run('role add ops --devices * --logins pi'));
    changed = [];
    const lines = ['device revoke cam', 'device label cam a=1', 'device rm cam', 'user rm bob', 'token create', `token rm ${store.listTokens()[0]!.id}`,
      'user role bob ops', 'role add r --devices * --logins pi', 'role edit ops --logins root', 'role rm ops', `user key rm bob ${keys[0]!.fingerprint}`];
    for (const line of lines) {
      assert.throws(() => run(line, c), /disk I\/O error/, line);
    }
    assert.throws(() => run(['user', 'add', 'dan', '--key', keys[1]!.line], c), /disk I\/O error/);
    assert.throws(() => run(['user', 'key', 'add', 'bob', keys[1]!.line], c), /disk I\/O error/);
    assert.deepEqual([store.getUser('bob')?.roles, store.getUser('bob')?.keys.length, store.getRole('ops')?.logins, store.getRole('r')], [['operator'], 1, ['pi'], null]);
    assert.deepEqual([store.getDevice('cam')?.status, store.getDevice('cam')?.labels], ['approved', {}]);
    assert.ok(store.getUser('bob'));
    assert.equal(store.getUser('dan'), null);
    assert.equal(store.listTokens().length, tokensBefore);
    assert.ok(store.listTokens().every((t) => t.revokedAt === null));
    assert.deepEqual(changed, [], 'live connections were not told of a change that did not happen');
  });
});

describe('argument checks found by review', () => {
  test('an unknown device sub-command is a usage error even for an unknown device', () => {
    const r = run('device frob ghost');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown device command 'frob'/);
  });

  test('audit --since takes a duration or a date, not any number', () => {
    const r = run('audit --since 1');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--since '1' is neither a duration/);
    ok(run('audit --since 2026-01-01'));
  });

  test('--uses and --limit take plain decimal numbers only', () => {
    for (const line of ['token create --uses 0x10', 'token create --uses 1e3', 'audit --limit 1e3']) {
      assert.equal(run(line).code, 2, line);
    }
    ok(run('token create --uses 10'));
  });

  test('the same key twice in user add is called that', () => {
    const r = run(['user', 'add', 'bob', '--key', keys[0]!.line, '--key', keys[0]!.line]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--key SHA256:\S+ is given twice/);
  });
});
