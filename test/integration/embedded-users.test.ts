// Who a session on the agent's built-in SSH server runs as, and who may log in, with the
// real OpenSSH clients through the relay. The agent runs in this process as root, so a
// session runs as the requested local user: a throwaway user (useradd -m, in a secondary
// group) gets its uid, groups, HOME, SHELL and working directory, its own PTY, cannot
// read a root-only file over ssh or sftp, and owns what it creates over sftp and scp. An
// unknown login name is refused. Operator keys: one added with `user add` on the relay
// can log in without a restart (the relay pushes keys to the agent), and after `user rm`
// the device refuses that key at once. Needs root (and util-linux's setpriv); skips
// otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync, chownSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { eventually, fileCleanup, makeKey, run, tempDir } from '../helpers/env.ts';
import { LOGIN, cannotSwitchUsers, createAccount, noSftpServer, notRoot, processesMatching, spawnSsh, startEmbedded, withDeviceKey, type EmbeddedFixture, type LocalAccount } from '../helpers/embedded.ts';
import { relayCommand, ssh } from '../helpers/ssh-client.ts';

const DEV = 'users-dev';
const suite = fileCleanup(after);
const skip = cannotSwitchUsers();
let e: EmbeddedFixture;
let user: LocalAccount;
/** A directory anyone may enter, holding a file only root may read. */
let shared: string;
let rootOnly: string;

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  if (skip) return;
  user = createAccount(suite);
  shared = tempDir(suite, 'ferry-users-');
  chmodSync(shared, 0o755);
  rootOnly = join(shared, 'root-only.txt');
  writeFileSync(rootOnly, 'for root only\n');
  chmodSync(rootOnly, 0o600);
});

const as = (login: string, command: string, extra: string[] = []) => ssh(e.admin, [...extra, `${login}@${DEV}`, command]);

test('a session runs as the login user: name, uid, primary and secondary groups, HOME, SHELL, USER, cwd', { skip }, async () => {
  const r = await as(user.name, 'id -un; id -u; id -g; id -G; echo "$HOME|$SHELL|$USER|$LOGNAME"; pwd');
  assert.equal(r.code, 0, r.stderr);
  const [name, uid, gid, groups, env, cwd] = r.stdout.trimEnd().split('\n');
  assert.equal(name, user.name);
  assert.equal(Number(uid), user.uid);
  assert.equal(Number(gid), user.gid);
  assert.deepEqual(groups!.split(' ').map(Number).sort(), [user.gid, user.groupGid].sort(), 'supplementary groups from /etc/group, and no others (not root\'s)');
  assert.equal(env, `${user.home}|${user.shell}|${user.name}|${user.name}`);
  assert.equal(cwd, user.home, 'the session starts in HOME, as with sshd');
});

test('the login user cannot read a root-only file (mode 600), and has no root capabilities', { skip }, async () => {
  const r = await as(user.name, `cat ${rootOnly}; echo "status=$?"; grep ^CapEff /proc/self/status`);
  assert.match(r.stderr, /Permission denied/);
  assert.doesNotMatch(r.stdout, /for root only/);
  assert.match(r.stdout, /^status=1$/m);
  assert.match(r.stdout, /^CapEff:\s+0+$/m, 'no effective capabilities');
  // The same command as root does read it: the refusal above is the user's rights.
  const root = await as('root', `cat ${rootOnly}`);
  assert.equal(root.stdout, 'for root only\n', root.stderr);
});

test('a PTY session as the login user: the terminal belongs to that user, as sshd does it', { skip }, async () => {
  // sshd chowns the PTY to the login user (mode 620, group tty), so programs that open
  // their terminal by name (tty, write, mesg, screen, gpg's pinentry, ssh's own password
  // prompt) work. A PTY left owned by root at mode 600 cannot be opened by its own user.
  const r = await as(user.name, 'id -un; t=$(tty); echo "$t"; stat -c %U "$t"; if : >"$t"; then echo reopen-ok; else echo reopen-failed; fi', ['-tt']);
  const lines = r.stdout.split('\r\n');
  assert.equal(lines[0], user.name);
  assert.match(lines[1]!, /^\/dev\/pts\/\d+$/);
  assert.equal(lines[2], user.name, 'the PTY is owned by the login user');
  assert.equal(lines[3], 'reopen-ok', 'the user can open its own terminal by name');
});

test('sftp as the login user: cannot get the root-only file, cannot write where only root may, files it creates are its own', { skip: skip || noSftpServer() }, async () => {
  const local = tempDir(suite, 'ferry-users-local-');
  chmodSync(local, 0o755);
  const upload = join(local, 'up.txt');
  writeFileSync(upload, 'from the operator\n');
  const batch = (name: string, lines: string[]) => {
    const p = join(local, name);
    writeFileSync(p, lines.join('\n') + '\n');
    return run('sftp', ['-F', e.admin.config, '-b', p, `${user.name}@${DEV}`], { timeoutMs: 30_000 });
  };
  const denied = await batch('denied', [`get ${rootOnly} ${join(local, 'stolen.txt')}`]);
  assert.notEqual(denied.code, 0, 'the batch fails');
  assert.match(denied.stderr, /Permission denied/);
  assert.equal(existsSync(join(local, 'stolen.txt')) && readFileSync(join(local, 'stolen.txt'), 'utf8').includes('root'), false, 'nothing of the file arrived');

  const readOnly = await batch('read-only', [`put ${upload} ${shared}/planted.txt`]);
  assert.notEqual(readOnly.code, 0, 'a directory only root may write to');
  assert.match(readOnly.stderr, /Permission denied/);
  assert.equal(existsSync(join(shared, 'planted.txt')), false);

  const ok = await batch('own', ['mkdir made-by-sftp', `put ${upload} made-by-sftp/up.txt`, 'pwd']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`Remote working directory: ${user.home}$`, 'm'), 'relative paths start at HOME');
  for (const p of [join(user.home, 'made-by-sftp'), join(user.home, 'made-by-sftp/up.txt')]) {
    const st = lstatSync(p);
    assert.deepEqual([st.uid, st.gid], [user.uid, user.gid], `${p} belongs to the login user`);
  }
  assert.equal(readFileSync(join(user.home, 'made-by-sftp/up.txt'), 'utf8'), 'from the operator\n');
});

test('scp (SFTP mode) as the login user: the copy belongs to that user; the root-only file cannot be fetched', { skip: skip || noSftpServer() }, async () => {
  const local = tempDir(suite, 'ferry-users-scp-');
  const src = join(local, 'scp.txt');
  writeFileSync(src, 'scp as a user\n');
  const up = await run('scp', ['-F', e.admin.config, '-q', src, `${user.name}@${DEV}:scp.txt`]);
  assert.equal(up.code, 0, up.stderr);
  const st = lstatSync(join(user.home, 'scp.txt'));
  assert.deepEqual([st.uid, st.gid], [user.uid, user.gid]);
  const steal = await run('scp', ['-F', e.admin.config, '-q', `${user.name}@${DEV}:${rootOnly}`, join(local, 'stolen.txt')]);
  assert.notEqual(steal.code, 0);
  assert.match(steal.stderr, /Permission denied/);
});

test('~/.ssh/rc is not run (differs from sshd)', { skip }, async () => {
  // sshd runs ~/.ssh/rc (or /etc/ssh/sshrc) before the shell or command; ferry's built-in
  // server does not run either. Asserted so that a change is noticed and documented.
  const dotSsh = join(user.home, '.ssh');
  mkdirSync(dotSsh, { recursive: true });
  writeFileSync(join(dotSsh, 'rc'), `touch ${join(user.home, 'rc-ran')}\n`);
  chownSync(dotSsh, user.uid, user.gid);
  chownSync(join(dotSsh, 'rc'), user.uid, user.gid);
  const r = await as(user.name, 'echo hi');
  assert.equal(r.stdout, 'hi\n', r.stderr);
  assert.equal(existsSync(join(user.home, 'rc-ran')), false);
});

test('an unknown login name is refused: nothing runs, and the operator is told why', { skip: notRoot('any login name is looked up only when the agent is root') }, async () => {
  // Differs from sshd, which refuses an unknown user during authentication ("Permission
  // denied (publickey)", exit 255). ferry's built-in server lets a valid operator key in
  // and then refuses every session with a message naming the login, exit 1, because SSH
  // has no other way to tell a refused login why (src/agent/embedded/server.ts).
  const login = `nosuch${process.pid}`;
  const marker = join(tempDir(suite, 'ferry-users-unknown-'), 'ran');
  const r = await as(login, `touch ${marker}; echo should-not-run`);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`Permission denied \\(publickey\\)|ferry: there is no user '${login}' on this device`));
  assert.equal(existsSync(marker), false, 'the command did not run');
  // Nor does anything else: no SFTP, no forwarding.
  const sftp = await run('sftp', ['-F', e.admin.config, '-b', '/dev/null', `${login}@${DEV}`], { timeoutMs: 20_000 });
  assert.notEqual(sftp.code, 0, 'sftp is refused too');
  const fwd = await ssh(e.admin, ['-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=INFO', '-W', '127.0.0.1:9', `${login}@${DEV}`], { timeoutMs: 20_000 });
  assert.notEqual(fwd.code, 0, 'a forward (ssh -W) is refused too');
});

test('user add: the new operator can log in on the device without a restart; user rm: the device refuses that key at once', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'ferry-users-keys-');
  const name = `op${process.pid}`;
  const key = makeKey(dir, `${name}_key`);
  t.after(() => relayCommand(e.f.admin, ['user', 'rm', name]));
  // Reaches the relay as admin, logs in to the device with the new key: so the answer comes
  // from the device's built-in server (the relay's front door has its own check).
  const viaAdmin = withDeviceKey(e.admin, dir, name, key.path);
  const own = e.setupFor(name, key.path);
  const probe = (s: typeof own) => ssh(s, [DEV, 'echo in'], { timeoutMs: 20_000 });

  const beforeAdd = await probe(viaAdmin);
  assert.equal(beforeAdd.code, 255, 'an unknown key is refused by the device');
  assert.match(beforeAdd.stderr, new RegExp(`${LOGIN}@${DEV}: Permission denied \\(publickey\\)`));

  const add = await relayCommand(e.f.admin, ['user', 'add', name, '--key', key.pub]);
  assert.equal(add.code, 0, add.stderr);
  // The relay pushes the key list over the live link; bounded wait, nothing restarts.
  const agentBefore = e.f.relay.store.getDevice(DEV)!;
  await eventually(async () => (await probe(viaAdmin)).stdout === 'in\n', 10_000, 'the device to accept the new key');
  const direct = await probe(own);
  assert.deepEqual([direct.code, direct.stdout], [0, 'in\n'], `the new operator through the relay as themself: ${direct.stderr}`);
  assert.equal(e.f.relay.store.getDevice(DEV)!.onlineSince, agentBefore.onlineSince, 'the same link: the agent did not reconnect');

  const rm = await relayCommand(e.f.admin, ['user', 'rm', name]);
  assert.equal(rm.code, 0, rm.stderr);
  const started = Date.now();
  const refused = await eventually(async () => {
    const r = await probe(viaAdmin);
    return r.code === 255 && /Permission denied \(publickey\)/.test(r.stderr) ? r : null;
  }, 5_000, 'the device to refuse the removed key');
  assert.equal(refused.stdout, '');
  assert.ok(Date.now() - started < 5_000);
});

test('user rm: sessions and forwards that logged in to the device with the removed key end at once; others keep running', { timeout: 60_000 }, async (t) => {
  // The operator's relay hop is the admin's connection, so the relay has nothing of the
  // removed user's to close: only the device knows which key each session logged in with.
  const dir = tempDir(t, 'ferry-users-rm-');
  const name = `rm${process.pid}`;
  const key = makeKey(dir, `${name}_key`);
  t.after(() => relayCommand(e.f.admin, ['user', 'rm', name]));
  const viaAdmin = withDeviceKey(e.admin, dir, name, key.path);
  const add = await relayCommand(e.f.admin, ['user', 'add', name, '--key', key.pub]);
  assert.equal(add.code, 0, add.stderr);
  await eventually(async () => (await ssh(viaAdmin, [DEV, 'echo in'], { timeoutMs: 20_000 })).stdout === 'in\n', 10_000, 'the device to accept the new key');

  // A service "on the device" that holds every connection open, for a forward through the removed key.
  const held = new Set<Socket>();
  const service = createServer((s) => { held.add(s); s.write('hello\n'); s.on('close', () => held.delete(s)); });
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { for (const s of held) s.destroy(); service.close(() => r()); }));
  const servicePort = (service.address() as AddressInfo).port;
  // ssh -L listens on a Unix socket in the temp dir: no port to pick.
  const localSocket = join(dir, 'forward.sock');

  const arg = (n: number) => `1000.${process.pid}${n}`;
  const pattern = (n: number) => `^sleep ${arg(n).replace('.', '\\.')}$`;
  t.after(() => { for (const n of [1, 2]) spawnSync('pkill', ['-KILL', '-f', pattern(n)]); });
  const removed = spawnSsh(t, viaAdmin, ['-L', `${localSocket}:127.0.0.1:${servicePort}`, DEV, `sleep ${arg(1)}`]);
  const kept = spawnSsh(t, e.admin, [DEV, `sleep ${arg(2)}`]);
  await eventually(() => processesMatching(pattern(1)).length === 1 && processesMatching(pattern(2)).length === 1, 15_000, 'both sessions to run on the device');
  // A connection through the removed key's forward, up to the service.
  const forwarded = await eventually(() => new Promise<Socket | null>((resolve) => {
    const s = connect(localSocket);
    s.once('data', () => resolve(s)).once('error', () => resolve(null));
  }), 10_000, 'the forward to reach the service');
  t.after(() => forwarded.destroy());
  const forwardClosed = new Promise<void>((r) => forwarded.once('close', () => r()));

  const started = Date.now();
  const rm = await relayCommand(e.f.admin, ['user', 'rm', name]);
  assert.equal(rm.code, 0, rm.stderr);
  const ended = await Promise.race([removed.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
  assert.notEqual(ended, 'still running', 'the session of the removed key ended within 5 s');
  assert.notEqual(ended, 0, 'ssh exits non-zero');
  t.diagnostic(`the removed key's ssh ended ${Date.now() - started} ms after 'user rm' was sent (the command itself included), with ${ended}`);
  assert.match(removed.stderr(), /ferry: the relay no longer lets this key log in to this device/, 'the client is told why');
  await eventually(() => processesMatching(pattern(1)).length === 0, 5_000, 'the removed key\'s sleep to end on the device');
  await Promise.race([forwardClosed, new Promise((_, reject) => setTimeout(() => reject(new Error('the forwarded connection is still open')), 5_000))]);
  await eventually(() => held.size === 0, 5_000, 'the device side of the forward to close');
  // The other key's session was not touched.
  assert.equal(kept.proc.exitCode, null, `the admin's session still runs: ${kept.stderr()}`);
  assert.equal(processesMatching(pattern(2)).length, 1, 'and so does its command');
});
