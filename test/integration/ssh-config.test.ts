// `ssh-config`: the ssh_config and known_hosts an operator gets from the relay let stock
// OpenSSH reach a device as NAME.ferry with pinned host keys on both hops, no prompt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileCleanup, makeKey, run } from '../helpers/env.ts';
import { ROOT, startFixture, type Fixture } from '../helpers/fixture.ts';
import { relayCommand } from '../helpers/ssh-client.ts';

let f: Fixture;
const suite = fileCleanup(after);

before(async () => {
  f = await startFixture(suite);
  await f.device('garage-cam', { config: { sshTarget: 'embedded' } });
});

/** Writes what the relay printed, pointing known_hosts at a temp file and adding the test's key. */
async function operatorFiles(knownHostsOverride?: (lines: string) => string): Promise<string> {
  const cfg = await relayCommand(f.admin, ['ssh-config']);
  assert.equal(cfg.code, 0, cfg.stderr);
  const kh = await relayCommand(f.admin, ['ssh-config', '--known-hosts']);
  assert.equal(kh.code, 0, kh.stderr);
  const knownHosts = join(f.dir, 'ferry_known_hosts');
  writeFileSync(knownHosts, knownHostsOverride ? knownHostsOverride(kh.stdout) : kh.stdout);
  const config = join(f.dir, 'ferry.conf');
  // What a user's ~/.ssh/config would add: their key. Everything else is as printed.
  writeFileSync(config, cfg.stdout.replaceAll('~/.ssh/ferry_known_hosts', knownHosts)
    .replace(/^(Host .*)$/gm, `$1\n  IdentityFile ${f.adminKey.path}\n  IdentitiesOnly yes\n  BatchMode yes\n  GlobalKnownHostsFile /dev/null`));
  return config;
}

test('the printed config and known_hosts reach a device as NAME.ferry without any prompt', async () => {
  const config = await operatorFiles();
  const r = await run('ssh', ['-F', config, 'root@garage-cam.ferry', 'echo reached; exit 6']);
  assert.equal(r.code, 6, r.stderr);
  assert.equal(r.stdout, 'reached\n');
});

test('known_hosts has the relay and every approved device that reported a host key', async () => {
  const r = await relayCommand(f.admin, ['ssh-config', '--json']);
  const { knownHosts } = JSON.parse(r.stdout) as { knownHosts: string[] };
  assert.equal(knownHosts.length, 2);
  assert.equal(knownHosts[0], `[127.0.0.1]:${f.relay.sshAddress.port} ${f.relay.hostKeyLine}`);
  assert.equal(knownHosts[1], `garage-cam.ferry,garage-cam ${f.relay.store.getDevice('garage-cam')!.hostKeyLine}`);
});

test('a device presenting another host key is a loud error, not a prompt', async () => {
  const other = makeKey(f.dir, 'impostor').pub.split(' ').slice(0, 2).join(' ');
  const config = await operatorFiles((lines) => lines.replace(/^(garage-cam\.ferry,garage-cam) .*$/m, `$1 ${other}`));
  const r = await run('ssh', ['-F', config, 'root@garage-cam.ferry', 'true']);
  assert.equal(r.code, 255);
  assert.match(r.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
});

test("the docs' line that adds 'Include ferry.conf' works with and without an existing ~/.ssh/config", async () => {
  const line = (file: string) => /^\{ echo 'Include ferry\.conf';.*$/m.exec(readFileSync(join(ROOT, file), 'utf8'))?.[0];
  const readme = line('README.md');
  assert.ok(readme, 'README.md has the line');
  assert.equal(line('docs/operations.md'), readme, 'docs/operations.md has the same line');
  for (const existing of [null, 'Host old\n  User me\n']) {
    const home = join(f.dir, `home-${existing === null ? 'new' : 'old'}`);
    // As after the two lines before it in the docs: ~/.ssh holds ferry.conf.
    mkdirSync(join(home, '.ssh'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'ferry.conf'), '');
    if (existing !== null) writeFileSync(join(home, '.ssh', 'config'), existing);
    const r = await run('sh', ['-c', readme], { env: { ...process.env, HOME: home } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(home, '.ssh', 'config'), 'utf8'), `Include ferry.conf\n${existing ?? ''}`);
  }
});
