// The two argv front ends over the operations give the same results for the same operations:
// `ferry COMMAND --data-dir DIR` on the relay host and `ssh -p PORT user@relay COMMAND`, against
// one running relay process. A permission refusal over SSH names the rule and is audited.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnRelay } from '../helpers/fixture.ts';
import { relayCommand, sshSetup } from '../helpers/ssh-client.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';

test('the local CLI and ssh relay COMMAND give the same output for the same operations', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const bob = makeKey(dir, 'bob_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  const relayKeyLine = readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  const asAdmin = sshSetup(dir, { port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine });
  const asBob = sshSetup(dir, { port: relay.port, user: 'bob', keyPath: bob.path, relayKeyLine });
  const local = (words: string[]) => run(process.execPath, [FERRY, ...words, '--data-dir', dataDir], { timeoutMs: 30_000 });
  const remote = (words: string[]) => relayCommand(asAdmin, words);
  // Over SSH first: its login is itself an audit row (relay.login), written before the
  // command runs, so `audit verify` and `audit export` see the same rows from both only so.
  const both = async (words: string[]) => {
    const r = await remote(words);
    return { l: await local(words), r };
  };

  // Changes, each made once through each front end with its own name: the same output but for the name.
  const changes: ((n: string) => string[])[] = [
    (n) => ['role', 'add', `ops-${n}`, '--devices', 'site=berlin,env!=prod', '--logins', 'pi,root', '--forward', '127.0.0.1:8080', '--actions', 'device.*'],
    (n) => ['role', 'edit', `ops-${n}`, '--forward', 'none', '--json'],
    (n) => ['token', 'create', '--name', `cam-${n}`, '--label', 'site=berlin', '--approve', '--json'],
  ];
  for (const change of changes) {
    const l = await local(change('l'));
    const r = await remote(change('r'));
    assert.equal(l.code, 0, l.stderr);
    assert.equal(r.code, 0, r.stderr);
    const strip = (text: string) => text.replace(/-[lr]\b/g, '-N').replace(/"(token|id|expiresAt)": "[^"]*"/g, '"$1": "…"');
    assert.equal(strip(l.stdout), strip(r.stdout), change('N').join(' '));
  }

  // A user added locally, given a role over SSH.
  assert.equal((await local(['user', 'add', 'bob', '--key', readFileSync(`${bob.path}.pub`, 'utf8').trim()])).code, 0);
  const bound = await remote(['user', 'role', 'bob', 'ops-l,operator']);
  assert.equal(bound.code, 0, bound.stderr);

  // Reads: byte for byte the same from both.
  for (const words of [['users', '--json'], ['users'], ['role', 'ls', '--json'], ['role', 'ls'], ['token', 'ls', '--all', '--json'], ['audit', '--action', 'role.*', '--json'], ['audit', 'verify'], ['audit', 'export']]) {
    const { l, r } = await both(words);
    assert.equal(l.code, 0, `${words.join(' ')}: ${l.stderr}`);
    assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: l.code, stdout: l.stdout, stderr: l.stderr }, words.join(' '));
  }
  const users = JSON.parse((await local(['users', '--json'])).stdout) as { name: string; roles: string[] }[];
  assert.deepEqual(users.map((u) => [u.name, u.roles]), [['admin', ['admin']], ['bob', ['operator', 'ops-l']]]);
  assert.match((await local(['audit', 'verify'])).stdout, /^audit log intact: \d+ rows, head [0-9a-f]{64}\n$/);

  // The same usage error and the same refusal text from both.
  for (const words of [['role', 'add', 'Bad', '--devices', '*', '--logins', 'pi'], ['role', 'rm', 'ghost'], ['user', 'role', 'admin', 'operator']]) {
    const { l, r } = await both(words);
    assert.notEqual(l.code, 0, words.join(' '));
    assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: l.code, stderr: l.stderr }, words.join(' '));
  }

  // bob's roles grant device.* but not role.list: refused over SSH with the rule, and audited.
  const refused = await relayCommand(asBob, ['role', 'ls']);
  assert.deepEqual({ code: refused.code, stderr: refused.stderr }, {
    code: 1, stderr: "ferry: 'bob' may not run role.list: no role grants it (roles operator: actions none; ops-l: actions device.*)\n",
  });
  const rows = JSON.parse((await local(['audit', '--action', 'action.refused', '--json'])).stdout) as { actor: string; detail: { action: string } }[];
  assert.deepEqual(rows.map((a) => [a.actor, a.detail.action]), [['bob', 'role.list']]);
  // device.* lets bob past the permission check for device actions: the device is what is missing.
  const approve = await relayCommand(asBob, ['device', 'approve', 'ghost']);
  assert.deepEqual({ code: approve.code, stderr: approve.stderr }, { code: 1, stderr: "ferry: no device named 'ghost'; 'devices' lists them\n" });
});

test('audit export over SSH sends an audit log many times the channel window, every row in order', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  const relayKeyLine = readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  const asAdmin = sshSetup(dir, { port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine });
  // 30,000 rows of about 400 bytes: some 12 MB, six times the 2 MB window ssh2 opens with,
  // so the relay has to wait for the client to take the output (back-pressure) many times.
  const store = openSqliteStore(join(dataDir, 'ferry.db'));
  store.transaction(() => {
    for (let i = 0; i < 30_000; i++) store.audit({ at: Date.now(), actor: 'load', action: 'token.create', target: null, detail: { i, pad: 'x'.repeat(200) } });
  });
  store.close();
  const r = await relayCommand(asAdmin, ['audit', 'export'], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: number; actor: string; detail: { i?: number } });
  const load = rows.filter((row) => row.actor === 'load');
  assert.equal(load.length, 30_000);
  assert.ok(load.every((row, i) => row.detail.i === i), 'in order, none lost or repeated');
  assert.ok(rows.every((row, i) => i === 0 || row.id > rows[i - 1]!.id), 'ids rise');
});
