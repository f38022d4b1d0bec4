// What the agent's built-in SSH server enforces by itself from the key list a relay pushes
// (each key's login names and forward targets, with the device's own --allow-forward rules),
// what it ends when a new list narrows them, and what it reports. The server runs on its
// own on a loopback port, so that a test can push any list, right or wrong, as a relay
// would; the clients are the real OpenSSH ssh, sftp and scp.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_FORWARD_RULES } from '../../src/agent/embedded/forward-policy.ts';
import { fingerprintOf, blobOf } from '../../src/common/ssh-keys.ts';
import { authorizedKeysFor, type RoleSpec } from '../../src/relay/access-policy.ts';
import { eventually, fileCleanup, makeKey, run, tempDir } from '../helpers/env.ts';
import { LOGIN, cannotSwitchUsers, createAccount, noSftpServer, processesMatching, spawnSsh, writeRandomFile } from '../helpers/embedded.ts';
import { pushedKey, startDirectEmbedded } from '../helpers/embedded-direct.ts';
import { ssh } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);
const dir = tempDir(suite, 'ferry-access-');
const alice = makeKey(dir, 'alice_key');
const bob = makeKey(dir, 'bob_key');
const DEVICE = { name: 'access-dev', labels: { site: 'lab' }, status: 'approved' };

/** A TCP service "on the device" that greets each connection with `greeting` and keeps it open until the client ends. */
async function service(greeting: string): Promise<{ port: number; held: Set<Socket>; server: Server }> {
  const held = new Set<Socket>();
  const server = createServer((s) => {
    held.add(s);
    s.on('close', () => held.delete(s));
    s.on('error', () => {});
    s.write(greeting);
    s.on('end', () => s.end());
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  suite.after(() => new Promise<void>((r) => { for (const s of held) s.destroy(); server.close(() => r()); }));
  return { port: (server.address() as AddressInfo).port, held, server };
}

test('logins: a key pushed with logins [USER] logs in as USER and is refused as root, told which role allows what', { skip: cannotSwitchUsers() }, async (t) => {
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  const user = createAccount(t);
  const roles: RoleSpec[] = [{ name: 'pi-only', devices: ['site=lab'], logins: [user.name], forwards: [], actions: [] }];
  // The list exactly as the relay's policy builds it for this device.
  d.server.setAuthorizedKeys(authorizedKeysFor(DEVICE, [{ name: 'alice', keys: [{ line: alice.pub }], roles }]));

  const ok = await ssh(d.setupFor('alice-user', alice.path, user.name), ['device', 'id -un']);
  assert.deepEqual([ok.code, ok.stdout], [0, `${user.name}\n`], ok.stderr);

  const marker = join(tempDir(t), 'ran-as-root');
  const root = await ssh(d.setupFor('alice-root', alice.path, 'root'), ['device', `touch ${marker}; echo ran`]);
  assert.notEqual(root.code, 0);
  assert.equal(root.stdout, '');
  assert.match(root.stderr, new RegExp(`ferry: operator 'alice' may not log in as 'root' on this device: role pi-only allows logins only as ${user.name}`));
  assert.equal(existsSync(marker), false, 'nothing ran as root');

  const login = await d.waitForReport('login', (r) => r.login === user.name);
  assert.equal(login.operator, 'alice');
  assert.equal(login.detail.key, fingerprintOf(blobOf(alice.pub.split(' ').slice(0, 2).join(' '))));
  const refused = await d.waitForReport('login.refused', (r) => r.login === 'root');
  assert.equal(refused.operator, 'alice');
  assert.match(String(refused.detail.why), /role pi-only allows logins only as/);
});

test('forwards: a key pushed with [127.0.0.1:A] reaches A and is refused B, which the device\'s own rules allow; the forward is reported with its bytes', async (t) => {
  const a = await service('hello A\n');
  const b = await service('hello B\n');
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { forwards: [`127.0.0.1:${a.port}`], roles: ['tunnel-a'] })]);
  const s = d.setupFor('alice-fwd', alice.path, LOGIN);

  const ok = await ssh(s, ['-W', `127.0.0.1:${a.port}`, 'device'], { input: 'ping\n' });
  assert.deepEqual([ok.code, ok.stdout], [0, 'hello A\n'], ok.stderr);
  const refused = await ssh(s, ['-o', 'LogLevel=INFO', '-W', `127.0.0.1:${b.port}`, 'device'], { input: 'ping\n' });
  assert.notEqual(refused.code, 0);
  assert.equal(refused.stdout, '', 'nothing of B came through');
  assert.match(refused.stderr, new RegExp(`open failed: administratively prohibited: 127\\.0\\.0\\.1:${b.port} is not a forward target of operator 'alice' on this device \\(role tunnel-a: 127\\.0\\.0\\.1:${a.port}\\)`));

  const start = await d.waitForReport('forward.start');
  assert.equal(start.detail.dest, `127.0.0.1:${a.port}`);
  const end = await d.waitForReport('forward.end', (r) => r.detail.forward === start.detail.forward);
  assert.deepEqual([end.operator, end.login, end.detail.bytesIn, end.detail.bytesOut], ['alice', LOGIN, 5, 8], 'ping\\n in, hello A\\n out');
  const r = await d.waitForReport('forward.refused');
  assert.equal(r.detail.dest, `127.0.0.1:${b.port}`);
});

test('forwards: the device\'s own --allow-forward rules refuse what the key\'s \'*\' would allow', async (t) => {
  const a = await service('hello A\n');
  const b = await service('hello B\n');
  const d = await startDirectEmbedded(t, tempDir(t), [{ host: '127.0.0.1', port: a.port }]);
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { forwards: ['*'] })]);
  const s = d.setupFor('alice-star', alice.path, LOGIN);
  const ok = await ssh(s, ['-W', `127.0.0.1:${a.port}`, 'device'], { input: '' });
  assert.deepEqual([ok.code, ok.stdout], [0, 'hello A\n'], ok.stderr);
  const refused = await ssh(s, ['-o', 'LogLevel=INFO', '-W', `127.0.0.1:${b.port}`, 'device'], { input: '' });
  assert.notEqual(refused.code, 0);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, new RegExp(`127\\.0\\.0\\.1:${b.port} is not in this device's forwarding allowlist`));
});

test('a wrong list pushed on purpose: a key the relay\'s policy allows but the list lacks is refused; the device trusts only its list', async (t) => {
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  const admin: RoleSpec = { name: 'admin', devices: ['*'], logins: ['*'], forwards: ['*'], actions: ['*'] };
  const policyList = authorizedKeysFor(DEVICE, [{ name: 'alice', keys: [{ line: alice.pub }], roles: [admin] }, { name: 'bob', keys: [{ line: bob.pub }], roles: [admin] }]);
  assert.deepEqual(policyList.map((k) => k.user), ['alice', 'bob'], 'the policy would let both in');
  d.server.setAuthorizedKeys(policyList.filter((k) => k.user !== 'bob'));

  const aliceIn = await ssh(d.setupFor('alice-wrong', alice.path, LOGIN), ['device', 'echo in']);
  assert.deepEqual([aliceIn.code, aliceIn.stdout], [0, 'in\n'], aliceIn.stderr);
  const bobIn = await ssh(d.setupFor('bob-wrong', bob.path, LOGIN), ['device', 'echo in']);
  assert.equal(bobIn.code, 255);
  assert.equal(bobIn.stdout, '');
  assert.match(bobIn.stderr, /Permission denied \(publickey\)/);
  const refused = await d.waitForReport('login.refused', (r) => r.operator === null);
  assert.equal(refused.login, LOGIN);
  assert.match(String(refused.detail.keys), new RegExp(fingerprintOf(blobOf(bob.pub.split(' ').slice(0, 2).join(' '))).replace(/[+/]/g, '\\$&')));
});

test('a list that narrows the logins ends a live session within a second, with the reason on stderr', async (t) => {
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { logins: ['*'], roles: ['ops'] })]);
  const arg = `1000.${process.pid}7`;
  t.after(() => { spawnSync('pkill', ['-KILL', '-f', `^sleep ${arg}$`]); });
  const live = spawnSsh(t, d.setupFor('alice-live', alice.path, LOGIN), ['device', `sleep ${arg}`]);
  await eventually(() => processesMatching(`^sleep ${arg.replace('.', '\\.')}$`).length === 1, 10_000, 'the session to run');

  const started = performance.now();
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { logins: ['someone-else'], roles: ['ops'] })]);
  const ended = await Promise.race([live.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
  const ms = Math.round(performance.now() - started);
  assert.notEqual(ended, 'still running');
  t.diagnostic(`the session ended ${ms} ms after the narrowed list`);
  assert.ok(ms <= 1_000, `within a second: ${ms} ms`);
  assert.match(live.stderr(), new RegExp(`ferry: operator 'alice' may not log in as '${LOGIN}' on this device: role ops allows logins only as someone-else; closing the connection`));
  await eventually(() => processesMatching(`^sleep ${arg.replace('.', '\\.')}$`).length === 0, 5_000, 'the command to end on the device');
  const end = await d.waitForReport('session.end');
  assert.equal(end.detail.why, 'access revoked: login no longer allowed');
});

test('a list that narrows the logins ends a live login shell (PTY) within a second, the reason on stderr', async (t) => {
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { logins: [LOGIN], roles: ['ops'] })]);
  // -tt: a terminal and the user's login shell, which waits at its prompt for input that never comes.
  const shell = spawnSsh(t, d.setupFor('alice-shell', alice.path, LOGIN), ['-tt', 'device']);
  const start = await d.waitForReport('session.start', (r) => r.detail.kind === 'shell');
  assert.equal(start.detail.pty, true);
  assert.equal(shell.proc.exitCode, null, `the shell runs: ${shell.stderr()}`);

  const started = performance.now();
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { logins: ['someone-else'], roles: ['ops'] })]);
  const ended = await Promise.race([shell.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
  const ms = Math.round(performance.now() - started);
  assert.notEqual(ended, 'still running');
  t.diagnostic(`the shell ended ${ms} ms after the narrowed list`);
  assert.ok(ms <= 1_000, `within a second: ${ms} ms`);
  assert.match(shell.stderr(), /may not log in as .* on this device: role ops allows logins only as someone-else; closing the connection/);
  const end = await d.waitForReport('session.end', (r) => r.detail.session === start.detail.session);
  assert.equal(end.detail.why, 'access revoked: login no longer allowed');
});

test('a list that drops a forward target closes that open forward; the login and its other forwards stay', async (t) => {
  const a = await service('hello A\n');
  const b = await service('hello B\n');
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  const both = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { forwards: both, roles: ['tunnels'] })]);
  const local = tempDir(t);
  const sockA = join(local, 'a.sock');
  const sockB = join(local, 'b.sock');
  const fwd = spawnSsh(t, d.setupFor('alice-L', alice.path, LOGIN), ['-N', '-L', `${sockA}:127.0.0.1:${a.port}`, '-L', `${sockB}:127.0.0.1:${b.port}`, 'device']);
  const open = (path: string) => eventually(() => new Promise<Socket | null>((resolve) => {
    const s = connect(path);
    s.once('data', () => resolve(s)).once('error', () => resolve(null));
  }), 10_000, `the forward at ${path} to reach its service`);
  const toA = await open(sockA);
  const toB = await open(sockB);
  t.after(() => { toA.destroy(); toB.destroy(); });
  const closedA = new Promise<void>((r) => toA.once('close', () => r()));

  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub, { forwards: [`127.0.0.1:${b.port}`], roles: ['tunnels'] })]);
  await Promise.race([closedA, new Promise((_, reject) => setTimeout(() => reject(new Error('the forward to A is still open')), 5_000))]);
  await eventually(() => a.held.size === 0, 5_000, 'the device side of the forward to A to close');
  assert.equal(b.held.size, 1, 'the forward to B is still open');
  assert.equal(toB.destroyed, false);
  assert.equal(fwd.proc.exitCode, null, `ssh still runs: ${fwd.stderr()}`);
  const end = await d.waitForReport('forward.end', (r) => r.detail.dest === `127.0.0.1:${a.port}`);
  assert.match(String(end.detail.why), new RegExp(`^access revoked: 127\\.0\\.0\\.1:${a.port} is not a forward target`));
  assert.equal(end.detail.bytesOut, 8);
  // A new forward to A is refused now.
  const again = connect(sockA);
  await new Promise<void>((r) => { again.once('close', () => r()); again.once('error', () => r()); again.resume(); });
  await d.waitForReport('forward.refused', (r) => r.detail.dest === `127.0.0.1:${a.port}`);
});

test('reports: a login, an exec with exit status 3, a signal, SFTP put and get, scp, each with what happened', { skip: noSftpServer() }, async (t) => {
  const d = await startDirectEmbedded(t, tempDir(t), DEFAULT_FORWARD_RULES);
  d.server.setAuthorizedKeys([pushedKey('alice', alice.pub)]);
  const s = d.setupFor('alice-reports', alice.path, LOGIN);
  const sessionOf = async (command: string) => {
    const start = await d.waitForReport('session.start', (r) => r.detail.command === command);
    assert.deepEqual([start.operator, start.login, start.detail.kind, start.detail.pty], ['alice', LOGIN, 'exec', false]);
    return d.waitForReport('session.end', (r) => r.detail.session === start.detail.session);
  };

  const three = await ssh(s, ['device', 'exit 3']);
  assert.equal(three.code, 3);
  const end3 = await sessionOf('exit 3');
  assert.equal(end3.detail.exit, 3);
  assert.equal(typeof end3.detail.durationMs, 'number');
  assert.equal(end3.detail.why, undefined, 'the program ended by itself');
  const login = await d.waitForReport('login');
  assert.deepEqual([login.operator, login.login], ['alice', LOGIN]);

  await ssh(s, ['device', 'kill -TERM $$']);
  const term = await sessionOf('kill -TERM $$');
  assert.equal(term.detail.signal, 'TERM');
  assert.equal(term.detail.exit, undefined);

  const work = tempDir(t);
  const remote = tempDir(t);
  const up = join(work, 'up.bin');
  writeRandomFile(up, 1);
  writeFileSync(join(work, 'batch'), [`put ${up} ${remote}/put.bin`, `get ${remote}/put.bin ${work}/got.bin`, ''].join('\n'));
  const sftp = await run('sftp', ['-F', s.config, '-b', join(work, 'batch'), 'device'], { timeoutMs: 30_000 });
  assert.equal(sftp.code, 0, sftp.stderr);
  assert.doesNotMatch(sftp.stderr, /open "|close "|session opened/, "sftp-server's log lines are not sent to the client");
  assert.equal(statSync(join(work, 'got.bin')).size, 1024 * 1024);
  const MiB = 1024 * 1024;
  const wrote = await d.waitForReport('file', (r) => r.detail.path === `${remote}/put.bin` && r.detail.op === 'write');
  assert.equal(wrote.detail.bytes, MiB);
  const read = await d.waitForReport('file', (r) => r.detail.path === `${remote}/put.bin` && r.detail.op === 'read');
  assert.equal(read.detail.bytes, MiB);
  assert.equal(read.detail.session, wrote.detail.session, 'one SFTP session');
  const sftpStart = await d.waitForReport('session.start', (r) => r.detail.session === read.detail.session);
  assert.deepEqual([sftpStart.detail.kind, sftpStart.detail.subsystem], ['subsystem', 'sftp']);
  await d.waitForReport('session.end', (r) => r.detail.session === read.detail.session && r.detail.exit === 0);

  // OpenSSH 9's scp speaks SFTP: the same file events.
  writeFileSync(join(work, 'scp.txt'), 'twelve bytes');
  const scp = await run('scp', ['-F', s.config, '-q', join(work, 'scp.txt'), `device:${remote}/scp.txt`], { timeoutMs: 30_000 });
  assert.equal(scp.code, 0, scp.stderr);
  assert.equal(readFileSync(join(remote, 'scp.txt'), 'utf8'), 'twelve bytes');
  const scpFile = await d.waitForReport('file', (r) => r.detail.path === `${remote}/scp.txt`);
  assert.deepEqual([scpFile.detail.op, scpFile.detail.bytes], ['write', 12]);
});
