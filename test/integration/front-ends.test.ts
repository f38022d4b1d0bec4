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
