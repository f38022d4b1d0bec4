// SSH clients other than OpenSSH, against the relay's command line and the agent's built-in
// server: Dropbear's dbclient (it sends a guessed first key-exchange packet, RFC 4253 §7) and
// Python's paramiko 2.12 (Debian 12; it offers only CTR and CBC ciphers). Both run for real,
// with pinned host keys. A bare ssh2 server with ferry's patches and algorithms also meets
// dbclient with each of the two curve25519 names first, since dbclient's guess is right for
// one order and wrong for the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Algorithms } from 'ssh2';
import { patchSsh2 } from '../../src/net/ssh2-internals.ts';
import { SSH_ALGORITHMS } from '../../src/protocol/ssh-algorithms.ts';
import { fileCleanup, makeKey, missing, run, type RunResult } from '../helpers/env.ts';
import { LOGIN, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import { ROOT } from '../helpers/fixture.ts';

const DEV = 'compat-dev';
const suite = fileCleanup(after);
let e: EmbeddedFixture;
/** The admin key in Dropbear's own format (dbclient reads no OpenSSH private keys). */
let dropbearKey: string;

/** Debian's paramiko is for Debian's python3, not whichever python3 comes first on PATH. */
const PYTHON = '/usr/bin/python3';
const PARAMIKO_EXEC = join(ROOT, 'test/helpers/paramiko-exec.py');
const noDbclient = missing('dbclient', 'dropbear-bin') || missing('dropbearconvert', 'dropbear-bin');
const noParamiko = spawnSync(PYTHON, ['-c', 'import paramiko']).status === 0 ? false : `needs paramiko for ${PYTHON} (Debian package python3-paramiko)`;
/** Bounds every client run: a hang in key exchange would otherwise last until the login grace time. */
const CLIENT_TIMEOUT_MS = 15_000;

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  if (!noDbclient) {
    dropbearKey = join(e.f.dir, 'admin_key.dropbear');
    const r = spawnSync('dropbearconvert', ['openssh', 'dropbear', e.f.adminKey.path, dropbearKey], { encoding: 'utf8' });
    assert.equal(r.status, 0, `dropbearconvert failed: ${r.stderr}`);
  }
});

let homes = 0;
/**
 * A HOME for dbclient whose ~/.ssh/known_hosts holds `lines`. Dropbear 2022.83 looks host
 * keys up by host name alone, without the port, and reads no other configuration.
 */
function dropbearHome(lines: string[]): string {
  const home = join(e.f.dir, `dropbear-home-${homes++}`);
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, '.ssh', 'known_hosts'), lines.join('\n') + '\n');
  return home;
}

/**
 * Runs dbclient with a private HOME; stdin is empty so that a host-key prompt can only fail.
 * By its full path: for a multi-hop destination dbclient runs its own argv[0] without a PATH search.
 */
function dbclient(home: string, args: string[]): Promise<RunResult> {
  const path = spawnSync('sh', ['-c', 'command -v dbclient'], { encoding: 'utf8' }).stdout.trim();
  return run(path, ['-i', dropbearKey, ...args], { env: { ...process.env, HOME: home }, timeoutMs: CLIENT_TIMEOUT_MS, input: '' });
}

/** Where a finished client run left off, for assertion messages. */
const outcome = (r: RunResult) => `exit ${r.code ?? r.signal}${r.signal === 'SIGTERM' ? ` (killed after ${CLIENT_TIMEOUT_MS} ms: it hung)` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

const deviceKeyLine = () => e.f.relay.store.getDevice(DEV)!.hostKeyLine!;

test('dbclient runs whoami on the relay\'s command line', { skip: noDbclient }, async () => {
  const home = dropbearHome([`127.0.0.1 ${e.f.relay.hostKeyLine}`]);
  const r = await dbclient(home, ['-p', String(e.f.relay.sshAddress.port), 'admin@127.0.0.1', 'whoami']);
  assert.equal(r.code, 0, outcome(r));
  assert.match(r.stdout, /^admin\b/, outcome(r));
});

test('dbclient runs a command on the built-in server, through the relay by OpenSSH', { skip: noDbclient }, async () => {
  const home = dropbearHome([`${DEV} ${deviceKeyLine()}`]);
  // OpenSSH carries the relay hop (ssh -W, as ProxyJump does), so that only the built-in server meets dbclient.
  const proxy = `ssh -F ${e.admin.config} -W ${DEV}:22 ${e.admin.relay}`;
  const r = await dbclient(home, ['-J', proxy, `${LOGIN}@${DEV}`, 'echo compat-$((6*7)); exit 3']);
  assert.equal(r.code, 3, outcome(r));
  assert.equal(r.stdout, 'compat-42\n', outcome(r));
});

for (const first of ['curve25519-sha256', 'curve25519-sha256@libssh.org']) {
  test(`dbclient's guessed key exchange against an ssh2 server with ${first} first`, { skip: noDbclient }, async (t) => {
    patchSsh2();
    const kex = [first, ...SSH_ALGORITHMS.kex.filter((k) => k !== first)];
    const hostKey = makeKey(e.f.dir, `bare_host_${homes}`);
    const server = new ssh2.Server({ hostKeys: [readFileSync(hostKey.path)], algorithms: { ...SSH_ALGORITHMS, kex } as Algorithms }, (conn) => {
      conn.on('error', () => {});
      conn.on('authentication', (ctx) => ctx.accept());
      conn.on('ready', () => conn.on('session', (accept) => accept().on('exec', (acceptExec) => {
        const ch = acceptExec();
        ch.end('kex-ok\n');
        ch.exit(0);
      })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    // Dropbear takes a comment after the key as part of it: the line must end with the key.
    const home = dropbearHome([`127.0.0.1 ${hostKey.pub.split(' ').slice(0, 2).join(' ')}`]);
    const r = await dbclient(home, ['-p', String((server.address() as AddressInfo).port), 'someone@127.0.0.1', 'anything']);
    assert.equal(r.code, 0, outcome(r));
    assert.equal(r.stdout, 'kex-ok\n', outcome(r));
  });
}

/** Runs paramiko-exec.py (see there) as admin; the known_hosts pins the relay and the device. */
function paramiko(command: string, device?: string): Promise<RunResult> {
  const known = join(e.f.dir, 'paramiko_known_hosts');
  writeFileSync(known, `[127.0.0.1]:${e.f.relay.sshAddress.port} ${e.f.relay.hostKeyLine}\n${DEV} ${deviceKeyLine()}\n`);
  const args = [PARAMIKO_EXEC, e.f.adminKey.path, known, String(e.f.relay.sshAddress.port), 'admin', command, ...(device ? [device, LOGIN] : [])];
  return run(PYTHON, args, { timeoutMs: CLIENT_TIMEOUT_MS });
}

test('paramiko 2.12 (CTR ciphers only) runs whoami on the relay\'s command line', { skip: noParamiko }, async () => {
  const r = await paramiko('whoami');
  assert.equal(r.code, 0, outcome(r));
  assert.match(r.stdout, /^admin\b/, outcome(r));
  assert.match(r.stderr, /cipher=aes\d+-ctr mac=hmac-sha2-\d+-etm@openssh\.com/, 'a CTR cipher with an encrypt-then-MAC MAC');
});

test('paramiko 2.12 runs a command on the built-in server through the relay', { skip: noParamiko }, async () => {
  const r = await paramiko('echo compat-$((6*7)); exit 3', DEV);
  assert.equal(r.code, 3, outcome(r));
  assert.equal(r.stdout, 'compat-42\n', outcome(r));
  assert.match(r.stderr, /cipher=aes\d+-ctr mac=hmac-sha2-\d+-etm@openssh\.com/);
});
