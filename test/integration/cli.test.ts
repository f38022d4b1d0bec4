// The ferry command line: local commands against a running relay's data dir, the token
// passed through the environment, key and directory modes, and clear errors (never a stack
// trace) for bad flags and missing set-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnFerry, spawnRelay } from '../helpers/fixture.ts';
import { relayCommand, ssh, sshSetup } from '../helpers/ssh-client.ts';

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
  assert.match(token.stdout, /^ferry3\.\S+\n$/);
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

test('the relay logs who logged in (user, key, address) and which device and port each reach went to', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  const token = await ferry(['token', 'create', '--name', 'box', '--approve', '--data-dir', dataDir]);
  assert.equal(token.code, 0, token.stderr);
  spawnFerry(t, ['agent', '--state-dir', join(dir, 'agent'), '--ssh-target', 'embedded'], { FERRY_TOKEN: token.stdout.trim() });
  await relay.waitFor(/"device":"box".*"msg":"device online"/);
  // The device's host key as the relay publishes it (`box.ferry,box ssh-ed25519 …`).
  const knownHosts = await ferry(['ssh-config', '--known-hosts', '--data-dir', dataDir]);
  const deviceKey = /^box\.ferry,box (.*)$/m.exec(knownHosts.stdout)![1]!;
  const setup = sshSetup(dir, {
    port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine: readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim(),
    deviceKeys: { box: deviceKey }, deviceUser: userInfo().username,
  });
  const whoami = await relayCommand(setup, ['whoami', '--json']);
  const key = (JSON.parse(whoami.stdout) as { keyFingerprint: string }).keyFingerprint;
  const login = JSON.parse((await relay.waitFor(/^.*"msg":"operator logged in".*$/m))[0]) as Record<string, unknown>;
  assert.deepEqual({ level: login.level, user: login.user, key: login.key, remote: login.remote }, { level: 30, user: 'admin', key, remote: '127.0.0.1' });
  const reached = await ssh(setup, ['box', 'true']);
  assert.equal(reached.code, 0, reached.stderr);
  const reach = JSON.parse((await relay.waitFor(/^.*"msg":"device reached".*$/m))[0]) as Record<string, unknown>;
  assert.deepEqual({ level: reach.level, user: reach.user, device: reach.device, port: reach.port, remote: reach.remote }, { level: 30, user: 'admin', device: 'box', port: 22, remote: '127.0.0.1' });
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
    [['relay', '--bogus'], 2, /^ferry: unknown option --bogus for `ferry relay`; see `ferry help relay`\n$/],
    [['agent', '--state-dir', join(dir, 'a0'), '-x'], 2, /^ferry: unknown option -x for `ferry agent`; see `ferry help agent`\n$/],
    [['demo', 'extra'], 2, /^ferry: unexpected argument 'extra' for `ferry demo`; see `ferry help demo`\n$/],
    [['relay', '--data-dir'], 2, /^ferry: --data-dir needs a value for `ferry relay`; see `ferry help relay`\n$/],
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

test('--help and -h on every subcommand print that part of `ferry help`', async () => {
  for (const command of ['relay', 'agent', 'demo']) {
    const help = await ferry(['help', command]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`^usage: ferry ${command}`));
    for (const flag of ['--help', '-h']) {
      // After other flags too, and even beside flags that are wrong, as with most tools.
      for (const args of [[command, flag], [command, '--log-level', 'debug', flag]]) {
        const r = await ferry(args);
        assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, help.stdout, `ferry ${args.join(' ')}`);
        assert.equal(r.stderr, '');
      }
    }
  }
  // The relay commands run locally: their help needs no data dir.
  const commands = await ferry(['help', 'commands']);
  assert.equal(commands.code, 0);
  for (const args of [['devices', '--help'], ['token', 'create', '-h'], ['user', 'add', '--help']]) {
    const r = await ferry(args);
    assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, commands.stdout, `ferry ${args.join(' ')}`);
  }
});

test('one relay per data dir: a second one exits naming the first, local commands still work, kill -9 leaves no stale lock', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const first = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  const token = await ferry(['token', 'create', '--name', 'box', '--approve', '--data-dir', dataDir]);
  assert.equal(token.code, 0, token.stderr);
  const agent = spawnFerry(t, ['agent', '--state-dir', join(dir, 'agent'), '--ssh-target', '127.0.0.1:9'], { FERRY_TOKEN: token.stdout.trim() });
  await agent.waitFor(/"msg":"link up"/);
  const online = async () => {
    const r = await ferry(['devices', '--json', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { online: boolean }[])[0]!.online;
  };
  assert.equal(await online(), true);
  const info = readFileSync(join(dataDir, 'relay.json'), 'utf8');

  // Without a lock this second relay would start, mark 'box' offline and rewrite relay.json.
  const second = await run(process.execPath, [FERRY, 'relay', '--data-dir', dataDir, '--ssh-listen', '127.0.0.1:0'], { timeoutMs: 10_000 });
  assert.equal(second.code, 1, `the second relay must exit at once:\n${second.stdout}${second.stderr}`);
  assert.match(second.stderr, new RegExp(`^ferry: ${dataDir} is in use by another relay \\(PID ${first.proc.pid}, started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)`));
  noStackTrace(second.stderr);
  assert.equal(await online(), true, 'the second relay left presence alone');
  assert.equal(readFileSync(join(dataDir, 'relay.json'), 'utf8'), info);

  // The kernel drops the lock with the process: kill -9 leaves nothing that blocks the next start.
  assert.equal(await first.stop('SIGKILL'), null);
  await spawnRelay(t, dataDir);
});
