// Covers src/relay/commands.ts: every operator command's human and --json output, usage errors, permissions and protections.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import { helpText, runCommand, type CommandContext, type CommandResult } from '../../src/relay/commands.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store } from '../../src/relay/store.ts';
import type { Role } from '../../src/relay/policy.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const ISO_NOW = new Date(NOW).toISOString();
const RELAY = { publicAddress: 'relay.example.com:2222', fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8' };
const RSA_LINE = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDA4mXeMuVTbNPgEHyGGXjxbgbjkWdnqhZEKFiA8Qe7X7ARR85p0mSWFNe9FFgXJYiUZJ4FfyBUzppfS7WMtmnAO/PiEyXgNbXfF3DGcHS2CW5bHeOAbn5sDtAAJSK7r4CdcsOqiK/kh9tCmygI5/wDzsTNqtJbtB/tIwmZjoq6Rw== rsa';
const HELP_HINT = "run 'help' for every command and its flags\n";
const USAGE = helpText(RELAY.publicAddress, 'admin');

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

function ctx(actor: { name: string; role: Role; keyFingerprint?: string | null } = { name: 'admin', role: 'admin' }, now = NOW): CommandContext {
  return {
    store, now, relay: RELAY,
    actor: { name: actor.name, role: actor.role, keyFingerprint: actor.keyFingerprint === undefined ? adminKey.fingerprint : actor.keyFingerprint },
    onChange: (name) => changed.push(name ?? '(users)'),
  };
}

/** Runs a command line (split on spaces) as `admin`, or as the given actor. */
function run(line: string | string[], c: CommandContext = ctx()): CommandResult {
  return runCommand(c, typeof line === 'string' ? line.split(' ').filter(Boolean) : line);
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
    assert.deepEqual(runCommand(ctx({ name: 'op', role: 'operator' }), ['help']).code, 0, 'operators get help too');
    for (const words of [['devices', '--help'], ['token', 'create', '-h'], ['device', 'label', '--help']]) {
      assert.deepEqual(runCommand(ctx(), words), { code: 0, stdout: USAGE + '\n', stderr: '' }, words.join(' '));
    }
  });

  test('an unknown command is a usage error with the full usage', () => {
    usage(run('frob'), "unknown command 'frob'", true);
    usage(run('token'), "unknown token command '': use create, ls or rm", true);
    usage(run('token delete'), "unknown token command 'delete': use create, ls or rm", true);
    usage(run('user'), "unknown user command '': use add or rm", true);
    usage(run('user frob x'), "unknown user command 'frob': use add or rm", true);
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
  test('operators are refused admin commands, with exit 1 and a message', () => {
    const op = ctx({ name: 'olga', role: 'operator' });
    for (const line of ['token create', 'token ls', 'token rm abc', 'device approve x', 'device rm x', 'device label x a=1', 'user add bob --key x', 'user rm admin', 'users', 'audit']) {
      const word = line.split(' ')[0]!;
      refused(run(line, op), `'${word}' is for admins only; you are an operator`);
    }
    assert.equal(store.listAudit({ limit: 10 }).length, 0, 'nothing happened');
    assert.equal(store.countUsers(), 1);
  });

  test('operators may run whoami and devices', () => {
    const op = ctx({ name: 'olga', role: 'operator', keyFingerprint: null });
    assert.deepEqual(ok(run('whoami', op)).stdout, 'olga (operator)\n');
    ok(run('devices', op));
  });
});

describe('whoami', () => {
  test('human and json', () => {
    assert.deepEqual(run('whoami'), { code: 0, stdout: `admin (admin) key ${adminKey.fingerprint}\n`, stderr: '' });
    assert.deepEqual(jsonOf(run('whoami --json')), { name: 'admin', role: 'admin', keyFingerprint: adminKey.fingerprint });
    assert.deepEqual(jsonOf(run('whoami --json', ctx({ name: 'local:root', role: 'admin', keyFingerprint: null }))), { name: 'local:root', role: 'admin', keyFingerprint: null });
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
    assert.equal(claims.relay, RELAY.publicAddress);
    assert.equal(claims.fingerprint, RELAY.fingerprint);
    const expires = new Date(NOW + LIMITS.tokenDefaultTtlMs).toISOString();
    assert.equal(r.stderr, `token ${claims.id} for any device name (the agent gives --name), 1 use, expires ${expires}, waits for 'device approve'\n`
      + 'on the device, as root: FERRY_TOKEN=TOKEN ferry agent --state-dir /var/lib/ferry-agent\n');
    const device = store.redeemToken({ id: claims.id, secretHash: createHash('sha256').update(claims.secret).digest(), requestedName: 'x', fallbackName: null, keyFingerprint: 'SHA256:x', keyLine: 'l', now: NOW + 1 });
    assert.equal(device.status, 'pending');
    const [entry] = store.listAudit({ limit: 10 });
    assert.deepEqual(entry && { ...entry, id: 0, prevHash: '', hash: '' }, { id: 0, at: NOW, actor: 'admin', action: 'token.create', target: null, detail: { id: claims.id, expiresAt: NOW + LIMITS.tokenDefaultTtlMs, uses: 1, approve: false, labels: {} }, source: 'relay', prevHash: '', hash: '' });
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
      labels: { site: 'berlin', floor: '2' }, approve: true, relay: RELAY.publicAddress, fingerprint: RELAY.fingerprint,
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
    assert.deepEqual(store.listAudit({ device: 'cam', limit: 10 }).map((a) => a.action), ['token.create', 'device.rm']);
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
  test('add an operator (default role) and an admin with two keys: human and json', () => {
    assert.deepEqual(run(['user', 'add', 'bob', '--key', `${keys[0]!.line} bob@laptop`]), { code: 0, stdout: "user 'bob' added as operator\n", stderr: '' });
    assert.deepEqual(store.getUser('bob')?.keys, [{ fingerprint: keys[0]!.fingerprint, line: keys[0]!.line }]);
    assert.deepEqual(jsonOf(run(['user', 'add', 'carol', '--key', keys[1]!.line, '--key', keys[2]!.line, '--role', 'admin', '--json'])),
      { name: 'carol', role: 'admin', keys: [keys[1]!.fingerprint, keys[2]!.fingerprint] });
    assert.deepEqual(store.getUser('carol')?.roles, ['admin']);
    const entry = store.listAudit({ device: 'carol', limit: 1 })[0]!;
    assert.deepEqual([entry.action, entry.detail], ['user.add', { role: 'admin', keys: [keys[1]!.fingerprint, keys[2]!.fingerprint] }]);
  });

  test('every problem at once: name, reserved name, role, missing or bad key', () => {
    usage(run('user add Bob --role root'), [
      "user name 'Bob' is invalid: use up to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or '_'",
      "--role 'root' is not one of admin, operator",
      '--key is required: the user\'s public key, e.g. --key "$(cat ~/.ssh/id_ed25519.pub)"',
    ].join('\n'));
    usage(run(['user', 'add', 'ferry-agent', '--key', RSA_LINE]), [
      "user name 'ferry-agent' is reserved: names starting with 'ferry-' belong to agents",
      "--key: key type ssh-rsa is not accepted: ferry uses Ed25519 keys only (make one with 'ssh-keygen -t ed25519')",
    ].join('\n'));
    usage(run(['user', 'add', 'bob', '--key', 'garbage']), "--key: not an OpenSSH public key: expected one line like 'ssh-ed25519 AAAA… comment'");
    usage(run(['user', 'add', '--key', keys[0]!.line]), 'expected 1 argument(s), got 0');
    assert.equal(store.countUsers(), 1);
  });

  test('conflicts with existing users and keys are refused', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    refused(run(['user', 'add', 'bob', '--key', keys[1]!.line]), "user 'bob' exists already; remove it first with 'user rm bob'");
    refused(run(['user', 'add', 'eve', '--key', adminKey.line]), `key ${adminKey.fingerprint} belongs to user 'admin' already: every operator needs a key of their own`);
    assert.equal(store.getUser('eve'), null);
  });

  test('rm removes an operator: human and json', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line]));
    ok(run(['user', 'add', 'dan', '--key', keys[1]!.line]));
    assert.deepEqual(run('user rm bob'), { code: 0, stdout: "user 'bob' removed\n", stderr: '' });
    assert.equal(store.getUser('bob'), null);
    assert.deepEqual(jsonOf(run('user rm dan --json')), { name: 'dan', result: 'removed' });
    assert.deepEqual(store.listAudit({ device: 'bob', limit: 10 }).map((a) => a.action), ['user.add', 'user.rm']);
  });

  test('nobody removes themselves, unknown users are not found', () => {
    refused(run('user rm admin'), 'you cannot remove yourself; ask another admin');
    refused(run('user rm ghost'), "no user named 'ghost'; 'users' lists them");
    assert.equal(store.countUsers(), 1);
  });

  test('the last admin cannot be removed; one of two can', () => {
    ok(run(['user', 'add', 'carol', '--key', keys[0]!.line, '--role', 'admin']));
    const asCarol = ctx({ name: 'carol', role: 'admin' });
    // A local admin (not a user) runs into the last-admin rule once carol is gone.
    const local = ctx({ name: 'local:root', role: 'admin', keyFingerprint: null });
    ok(run('user rm admin', asCarol));
    refused(run('user rm carol', local), "'carol' is the last admin; add another admin first");
    assert.deepEqual(store.getUser('carol')?.roles, ['admin']);
  });

  test('users: table and json', () => {
    ok(run(['user', 'add', 'bob', '--key', keys[0]!.line, '--key', keys[1]!.line]));
    const fps = [keys[0]!.fingerprint, keys[1]!.fingerprint].sort();
    const lines = ok(run('users')).stdout.split('\n');
    assert.match(lines[0]!, /^NAME\s+ROLE\s+KEYS$/);
    assert.deepEqual(lines[1]!.split(/\s{2,}/), ['admin', 'admin', adminKey.fingerprint]);
    assert.deepEqual(lines[2]!.split(/\s{2,}/), ['bob', 'operator', fps.join(' ')]);
    assert.equal(lines[3], '');
    assert.deepEqual(jsonOf(run('users --json')), [
      { name: 'admin', role: 'admin', createdAt: new Date(NOW - 1000).toISOString(), keys: [adminKey.fingerprint] },
      { name: 'bob', role: 'operator', createdAt: ISO_NOW, keys: fps },
    ]);
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
    assert.deepEqual({ ...list[0], id: 0, prevHash: '', hash: '' }, { id: 0, at: new Date(NOW - 30 * 60_000).toISOString(), actor: 'admin', action: 'device.revoke', target: 'cam', detail: { why: 'lost' }, source: 'relay', prevHash: '', hash: '' });
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

describe('help names this relay and the caller', () => {
  test('help shows the command line to paste, with the relay address and the user', () => {
    const help = ok(run('help')).stdout;
    assert.match(help, /^ferry relay commands \(ssh -p 2222 admin@relay\.example\.com COMMAND, or ferry COMMAND --data-dir DIR on the relay host\):/);
    const asOlga = ok(run('help', ctx({ name: 'olga', role: 'operator' }))).stdout;
    assert.match(asOlga, /\(ssh -p 2222 olga@relay\.example\.com COMMAND,/);
    const local = ok(run('help', ctx({ name: 'local:root', role: 'admin', keyFingerprint: null }))).stdout;
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
    assert.deepEqual(changed, [], 'labels change no live connection');
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
    const two = jsonOf(run('token create --uses 3 --ttl 2h --json', ctx(undefined, NOW + 1000))) as { id: string; token: string };
    const expired = jsonOf(run('token create --ttl 1m --json', ctx(undefined, NOW - 120_000))) as { id: string };
    const later = ctx(undefined, NOW + 2000);
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
    assert.deepEqual(run(['token', 'rm', t.id], ctx(undefined, NOW + 10)), { code: 0, stdout: `token ${t.id} revoked: it enrols no more devices\n`, stderr: '' });
    assert.throws(() => store.redeemToken({ id: claims.id, secretHash: createHash('sha256').update(claims.secret).digest(), requestedName: 'x', fallbackName: null, keyFingerprint: 'SHA256:x', keyLine: 'l', now: NOW + 20 }),
      /this enrollment token was revoked at .* \(token rm\): ask an admin for a new one/);
    const entry = store.listAudit({ limit: 1 })[0]!;
    assert.deepEqual([entry.actor, entry.action, entry.target, entry.detail], ['admin', 'token.rm', null, { id: t.id }]);
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
    for (const line of ['device revoke cam', 'device label cam a=1', 'device rm cam', 'user rm bob', 'token create', `token rm ${store.listTokens()[0]!.id}`]) {
      assert.throws(() => run(line, c), /disk I\/O error/, line);
    }
    assert.throws(() => run(['user', 'add', 'dan', '--key', keys[1]!.line], c), /disk I\/O error/);
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
