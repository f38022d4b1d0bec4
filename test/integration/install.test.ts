// A release as a new user installs it: `npm pack` in the checkout, `npm install -g` of the
// tarball into a temp prefix, then the installed `ferry` runs a relay, an agent with the
// built-in SSH server, an operator command and an ssh to the device, all from a temp dir
// outside the repository.
//
// SLOW (minutes): the install compiles the native modules (better-sqlite3, node-pty, ssh2's
// crypto binding) when no prebuilt binary fits. It does one install. It needs the npm
// registry (--prefer-offline takes what npm's cache has) and python3, make and g++.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../../src/protocol/version.ts';
import { makeKey, missing, run, tempDir } from '../helpers/env.ts';
import { ROOT, spawnAgent, spawnRelay } from '../helpers/fixture.ts';
import { relayCommand, ssh, sshSetup } from '../helpers/ssh-client.ts';

/** Packing builds dist/; installing compiles native modules. */
const PACK_TIMEOUT_MS = 5 * 60_000;
const INSTALL_TIMEOUT_MS = 15 * 60_000;
/** The dependencies whose install scripts build native code. */
const NATIVE_BUILDS = 'better-sqlite3,node-pty,ssh2,cpu-features';

/** The test's environment without what `npm test` sets for its scripts (npm_*, the repo's node_modules/.bin). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_')) env[k] = v;
  env.PATH = (process.env.PATH ?? '').split(':').filter((p) => !p.startsWith(ROOT)).join(':');
  return env;
}

test('the packed tarball installs with npm install -g and its ferry runs a relay, an agent and ssh', {
  timeout: PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 2 * 60_000,
  skip: missing('g++', 'g++') || missing('make', 'make') || missing('python3', 'python3'),
}, async (t) => {
  const dir = tempDir(t, 'ferry-install-');
  const env = cleanEnv();

  const pack = await run('npm', ['pack', '--pack-destination', dir, '--loglevel=error'], { cwd: ROOT, env, timeoutMs: PACK_TIMEOUT_MS });
  assert.equal(pack.code, 0, pack.stderr);
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
  const files = (await run('tar', ['-tzf', tarball])).stdout.split('\n').filter(Boolean);
  for (const f of ['package/bin/ferry.js', 'package/dist/cli/main.js', 'package/packaging/systemd/ferry-relay.service']) assert.ok(files.includes(f), `the tarball holds ${f}`);
  assert.deepEqual(files.filter((f) => /^package\/(src|test|bench)\/|\.map$/.test(f)), [], 'no sources, tests or source maps in the tarball');
  // No script of the package's own may run at install: they would need the dev tools.
  const manifest = JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'])).stdout) as { scripts: Record<string, string> };
  assert.deepEqual(['prepare', 'preinstall', 'install', 'postinstall'].filter((s) => s in manifest.scripts), []);

  const prefix = join(dir, 'prefix');
  // The native modules' build scripts, named as npm 11 asks (older npm ignores the flag).
  const install = await run('npm', ['install', '-g', '--prefix', prefix, `--allow-scripts=${NATIVE_BUILDS}`, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    { cwd: dir, env, timeoutMs: INSTALL_TIMEOUT_MS });
  assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
  assert.doesNotMatch(install.stderr, /install scripts not yet covered/, 'every install script is allowed by name');
  const ferryBin = join(prefix, 'bin/ferry');
  const ferry = (args: string[]) => run(ferryBin, args, { cwd: dir, env, timeoutMs: 30_000 });
  assert.equal((await ferry(['--version'])).stdout, `${VERSION}\n`);
  assert.match((await ferry(['help'])).stdout, /^ferry \S+: reach devices/);

  // Long-running ones through sh, so that they too start in the temp dir.
  const installed = ['/bin/sh', '-c', 'cd "$0" && exec "$@"', dir, ferryBin];
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`], installed);
  const token = await ferry(['token', 'create', '--name', 'box', '--approve', '--data-dir', dataDir]);
  assert.equal(token.code, 0, token.stderr);
  await spawnAgent(t, join(dir, 'agent'), ['--token', token.stdout.trim()], installed);

  const known = (await ferry(['ssh-config', '--known-hosts', '--data-dir', dataDir])).stdout;
  const deviceKey = /^box\.ferry,box (.+)$/m.exec(known)![1]!;
  const s = sshSetup(dir, {
    port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine: readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' '),
    deviceKeys: { box: deviceKey }, deviceUser: (await run('id', ['-un'])).stdout.trim(),
  });
  const devices = await relayCommand(s, ['devices']);
  assert.match(devices.stdout, /\nbox +approved +online/, devices.stderr);
  const reach = await ssh(s, ['box', 'echo hello from the installed ferry; exit 3']);
  assert.equal(reach.stdout, 'hello from the installed ferry\n', reach.stderr);
  assert.equal(reach.code, 3);
});
