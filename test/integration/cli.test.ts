// The ferry command line: local commands against a running relay's data dir, the token
// passed through the environment, key and directory modes, and clear errors (never a stack
// trace) for bad flags and missing set-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnFerry, spawnRelay } from '../helpers/fixture.ts';

const ferry = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [FERRY, ...args], { env: { ...process.env, ...env }, timeoutMs: 30_000 });

function noStackTrace(text: string) {
  assert.doesNotMatch(text, /\n\s+at .*:\d+:\d+/, `stack trace in:\n${text}`);
}

test('local commands on the relay host, and an agent enrolled with FERRY_TOKEN', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dataDir, 'ssh_host_ed25519_key')).mode & 0o777, 0o600);

  const token = await ferry(['token', 'create', '--name', 'box', '--approve', '--label', 'site=lab', '--data-dir', dataDir]);
  assert.equal(token.code, 0, token.stderr);
  assert.match(token.stdout, /^ferry2\.\S+\n$/);
  assert.match(token.stderr, /for device 'box', 1 use, expires .*, approved on enrollment/);

  // The token through the environment keeps it out of `ps`; the agent needs nothing else.
  const stateDir = join(dir, 'agent');
  const agent = spawnFerry(t, ['agent', '--state-dir', stateDir, '--ssh-target', '127.0.0.1:9'], { FERRY_TOKEN: token.stdout.trim() });
  await agent.waitFor(/"msg":"link up"/);
  assert.equal(statSync(stateDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(stateDir, 'id_ed25519')).mode & 0o777, 0o600);
  assert.equal(statSync(join(stateDir, 'agent.json')).mode & 0o777, 0o600);
  assert.doesNotMatch(agent.stdout() + agent.stderr(), /ferry[12]\./, 'the token is never logged');

  const devices = await ferry(['devices', '--json', '--data-dir', dataDir]);
  assert.equal(devices.code, 0, devices.stderr);
  const [d] = JSON.parse(devices.stdout) as Record<string, unknown>[];
  assert.deepEqual({ name: d!.name, status: d!.status, online: d!.online, labels: d!.labels }, { name: 'box', status: 'approved', online: true, labels: { site: 'lab' } });

  const bob = makeKey(dir, 'bob_key');
  const add = await ferry(['user', 'add', 'bob', '--key', bob.pub, '--data-dir', dataDir]);
  assert.equal(add.code, 0, add.stderr);
  const users = await ferry(['users', '--json'], { FERRY_DATA_DIR: dataDir });
  assert.deepEqual((JSON.parse(users.stdout) as { name: string; role: string }[]).map((u) => `${u.name}:${u.role}`), ['admin:admin', 'bob:operator']);

  // A second run of the agent needs only its state dir.
  await agent.stop();
  const again = spawnFerry(t, ['agent', '--state-dir', stateDir]);
  await again.waitFor(/"msg":"link up"/);
});

test('bad set-up and bad flags get one clear message each and a usage exit code', async (t) => {
  const dir = tempDir(t);
  const pub = join(dir, 'not-a-key.pub');
  writeFileSync(pub, 'hello\n');
  const cases: [string[], number, RegExp][] = [
    [['relay'], 2, /--data-dir is required/],
    [['relay', '--data-dir', join(dir, 'r1'), '--ssh-listen', 'nowhere'], 2, /--ssh-listen 'nowhere' must be HOST:PORT/],
    [['relay', '--data-dir', join(dir, 'r2'), '--ssh-listen', '127.0.0.1:0'], 2, /no users yet: start it once with --admin-key/],
    [['relay', '--data-dir', join(dir, 'r3'), '--admin-key', pub], 2, /--admin-key .*not an OpenSSH public key/],
    [['relay', '--data-dir', join(dir, 'r4'), '--admin-key', join(dir, 'missing.pub'), '--keepalive-interval', 'often'], 2, /no such file[\s\S]*--keepalive-interval 'often' is not a duration/],
    [['relay', '--bogus'], 2, /Unknown option '--bogus'/],
    [['agent', '--state-dir', join(dir, 'a1')], 2, /holds no enrollment yet: the first run needs --token/],
    [['agent', '--state-dir', join(dir, 'a2'), '--token', 'garbage'], 1, /not a ferry enrollment token/],
    [['agent', '--state-dir', join(dir, 'a3'), '--name', 'Not_OK', '--token', 'x'], 2, /not a DNS label/],
    [['devices'], 2, /needs --data-dir DIR/],
    [['devices', '--data-dir', join(dir, 'nothing')], 2, /holds no relay store/],
    [['frob'], 2, /unknown command 'frob'/],
  ];
  for (const [args, code, message] of cases) {
    const r = await ferry(args);
    assert.equal(r.code, code, `ferry ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, `ferry ${args.join(' ')}`);
    noStackTrace(r.stderr);
  }
});

test('the relay refuses a host key file that others can read', async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  await relay.stop();
  const { chmodSync } = await import('node:fs');
  chmodSync(join(dataDir, 'ssh_host_ed25519_key'), 0o644);
  const r = await ferry(['relay', '--data-dir', dataDir, '--ssh-listen', '127.0.0.1:0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /readable by others \(mode 644\): run 'chmod 600 /);
  noStackTrace(r.stderr);
});
