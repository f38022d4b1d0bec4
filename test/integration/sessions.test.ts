// The relay's live sessions (src/relay/sessions.ts) through the real OpenSSH client with
// ProxyJump: reach.start/reach.end rows with bytes each way and why, the caps per user and
// per device, the idle timeout, revocation ending live sessions, login rows (bounded under a
// flood of bad logins), and device reports recorded as ssh.* rows (bounded too).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { connectToRelay } from '../../src/agent/relay-connection.ts';
import { tcpDialer } from '../../src/net/dialer.ts';
import { openStateDir } from '../../src/agent/state.ts';
import { AUTHORIZED_KEYS_COMMAND } from '../../src/protocol/authorized-keys.ts';
import { encodeDeviceReport } from '../../src/protocol/device-report.ts';
import { AGENT_LOGIN } from '../../src/protocol/names.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store } from '../../src/relay/store.ts';
import { parsePublicKey } from '../../src/common/ssh-keys.ts';
import { eventually, fileCleanup, makeKey, run } from '../helpers/env.ts';
import { FERRY, startFixture, type Fixture } from '../helpers/fixture.ts';
import { LOGIN, startEmbedded } from '../helpers/embedded.ts';
import { relayCommand, ssh, type SshSetup } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);

/**
 * Lets `pub` log in to the fixture's devices too (their throwaway sshd), so that a session
 * runs until the relay ends it rather than ending when the device refuses the key.
 */
function trustOnDevices(f: Fixture, pub: string): void {
  appendFileSync(join(f.dir, 'sshd', 'authorized_keys'), `${pub}\n`);
}

/** Audit rows with `action`, oldest first. */
function rows(store: Store, action: string) {
  return store.listAudit({ limit: 100_000 }).filter((a) => a.action === action);
}

/** `ssh DEVICE COMMAND` left running; resolves `exited` with the time it exited. */
function spawnSsh(s: SshSetup, device: string, command: string): { proc: ChildProcess; exited: Promise<number>; stderr: () => string } {
  const proc = spawn('ssh', ['-F', s.config, device, command], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  suite.after(() => { proc.kill('SIGKILL'); });
  return { proc, exited: once(proc, 'exit').then(() => Date.now()), stderr: () => err };
}

/** Waits until `n` reaches to `device` are live on the relay. */
function liveReaches(f: Fixture, n: number, device: string) {
  return eventually(() => f.relay.sessions.reaches().filter((r) => r.device === device).length === n || null, 15_000, `${n} live sessions to ${device}`);
}

test('a reach writes reach.start and reach.end with the session id, bytes each way and why it ended', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  const input = randomBytes(1024 * 1024);
  const up = await ssh(f.admin, ['cam', 'wc -c'], { input });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stdout.trim(), String(input.length));
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[0], 10_000, 'the reach.end row');
  const start = rows(f.relay.store, 'reach.start')[0]!;
  assert.equal(start.actor, 'admin');
  assert.equal(start.target, 'cam');
  assert.equal(start.detail.session, end.detail.session);
  assert.equal(start.detail.kind, 'jump');
  assert.equal(start.detail.remote, '127.0.0.1');
  const d = end.detail as { bytesIn: number; bytesOut: number; why: string; started: number; durationMs: number };
  // The inner SSH session is end to end: the relay counts its encrypted bytes, a little more than the payload.
  assert.ok(d.bytesIn > input.length && d.bytesIn < input.length * 1.1 + 64 * 1024, `bytes in ${d.bytesIn} for a ${input.length}-byte upload`);
  assert.ok(d.bytesOut < 256 * 1024, `bytes out ${d.bytesOut} for a short answer`);
  assert.match(d.why, /^(client|device) closed$/);
  assert.equal(d.started, start.at);

  const down = await ssh(f.admin, ['cam', 'head -c 2097152 /dev/zero']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.stdout.length, 2 * 1024 * 1024);
  const second = await eventually(() => rows(f.relay.store, 'reach.end')[1], 10_000, 'the second reach.end row');
  const d2 = second.detail as { bytesIn: number; bytesOut: number };
  assert.ok(d2.bytesOut > 2 * 1024 * 1024 && d2.bytesOut < 2.2 * 1024 * 1024 + 64 * 1024, `bytes out ${d2.bytesOut} for a 2 MiB download`);
  assert.ok(d2.bytesIn < 512 * 1024, `bytes in ${d2.bytesIn}`);
});

test('caps: the N+1th session of a user and of a device is refused with a message naming the flag, and audited', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite, { maxSessionsPerUser: 2, maxSessionsPerDevice: 3 });
  await f.device('cam');
  const bobKey = makeKey(f.dir, 'bob_key');
  const add = await relayCommand(f.admin, ['user', 'add', 'bob', '--key', bobKey.pub]);
  assert.equal(add.code, 0, add.stderr);
  trustOnDevices(f, bobKey.pub);
  const bob = f.setupFor('bob', bobKey.path);
  spawnSsh(f.admin, 'cam', 'sleep 60');
  spawnSsh(f.admin, 'cam', 'sleep 60');
  await liveReaches(f, 2, 'cam');
  const third = await ssh(f.admin, ['cam', 'true']);
  assert.equal(third.code, 255);
  assert.match(third.stderr, /'admin' already has 2 sessions open, the most one user may hold \(--max-sessions-per-user 2\)/);
  spawnSsh(bob, 'cam', 'sleep 60');
  await liveReaches(f, 3, 'cam');
  const fourth = await ssh(bob, ['cam', 'true']);
  assert.equal(fourth.code, 255);
  assert.match(fourth.stderr, /device 'cam' already has 3 sessions open, the most one device takes \(--max-sessions-per-device 3\)/);
  const refused = rows(f.relay.store, 'reach.refused');
  assert.deepEqual(refused.map((r) => [r.actor, r.target]), [['admin', 'cam'], ['bob', 'cam']]);
  assert.match(String(refused[0]!.detail.why), /--max-sessions-per-user 2/);
  assert.match(String(refused[1]!.detail.why), /--max-sessions-per-device 3/);
});

test('the idle timeout ends a session that moves no byte, as "idle timeout"', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite, { sessionIdleTimeoutMs: 3_000 });
  await f.device('cam');
  // A busy session is not idle: this one prints every 0.25 s for 6 s, twice the timeout. The
  // gap is a twelfth of the timeout, so that a loaded machine delaying a print does not make it idle.
  const busy = await ssh(f.admin, ['cam', 'for i in $(seq 24); do echo $i; sleep 0.25; done']);
  assert.equal(busy.code, 0, busy.stderr);
  assert.equal(busy.stdout, Array.from({ length: 24 }, (_, i) => `${i + 1}\n`).join(''));
  const started = Date.now();
  const s = spawnSsh(f.admin, 'cam', 'sleep 60');
  const exitedAt = await s.exited;
  assert.ok(exitedAt - started < 20_000, 'ssh ended long before its command would have');
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[1], 10_000, 'the reach.end row');
  assert.equal(end.detail.why, 'idle timeout');
});

test('removing a user ends their live ProxyJump session and connection at once, audited as access revoked', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  const bobKey = makeKey(f.dir, 'bob_key');
  assert.equal((await relayCommand(f.admin, ['user', 'add', 'bob', '--key', bobKey.pub])).code, 0);
  trustOnDevices(f, bobKey.pub);
  const s = spawnSsh(f.setupFor('bob', bobKey.path), 'cam', 'sleep 60');
  await liveReaches(f, 1, 'cam');
  const t0 = Date.now();
  const rm = await relayCommand(f.admin, ['user', 'rm', 'bob']);
  assert.equal(rm.code, 0, rm.stderr);
  const exitedAt = await s.exited;
  assert.ok(exitedAt - t0 < 3_000, `bob's ssh ended ${exitedAt - t0} ms after the removal`);
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[0], 10_000, 'the reach.end row');
  assert.equal(end.actor, 'bob');
  assert.equal(end.detail.why, "access revoked: user 'bob' was removed");
  assert.equal(f.relay.sessions.connections().filter((c) => c.principal.user === 'bob').length, 0);
});

test('logins are audited with remote address and key fingerprint; refused ones say why', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  const r = await relayCommand(f.admin, ['whoami']);
  assert.equal(r.code, 0, r.stderr);
  const login = await eventually(() => rows(f.relay.store, 'relay.login')[0], 5_000, 'the relay.login row');
  const adminFp = f.relay.store.getUser('admin')!.keys[0]!.fingerprint;
  assert.deepEqual([login.actor, login.detail.key, login.detail.remote], ['admin', adminFp, '127.0.0.1']);

  const stranger = makeKey(f.dir, 'stranger_key');
  const bad = await relayCommand(f.setupFor('mallory', stranger.path), ['whoami']);
  assert.equal(bad.code, 255);
  const wrongKey = await relayCommand(f.setupFor('admin', stranger.path), ['whoami']);
  assert.equal(wrongKey.code, 255);
  const refused = await eventually(() => { const x = rows(f.relay.store, 'relay.login.refused'); return x.length === 2 ? x : null; }, 5_000, 'two relay.login.refused rows');
  assert.equal(refused[0]!.actor, 'mallory');
  assert.equal(refused[0]!.detail.why, 'no such user');
  assert.equal(refused[0]!.detail.remote, '127.0.0.1');
  assert.match(String(refused[0]!.detail.key), /^SHA256:/);
  assert.equal(refused[1]!.actor, 'admin');
  assert.equal(refused[1]!.detail.why, "the key is not one of admin's keys");
});

test('200 bad logins write a bounded number of rows, and one summary row says how many more', { timeout: 120_000 }, async () => {
  const f = await startFixture(suite, { loginRefusalAudit: { perWindow: 10, windowMs: 60_000 } });
  const stranger = makeKey(f.dir, 'flood_key');
  const privateKey = readFileSync(stranger.path);
  const attempt = () => new Promise<void>((resolve) => {
    const c = new ssh2.Client();
    c.on('error', () => {}).on('close', () => resolve()).on('ready', () => c.end());
    c.connect({ host: '127.0.0.1', port: f.relay.sshAddress.port, username: 'mallory', privateKey, readyTimeout: 20_000 });
  });
  for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 20 }, attempt));
  await eventually(() => f.relay.store.listAudit({ limit: 1000 }).some((a) => a.action === 'relay.login.refused') || null, 5_000, 'refusal rows');
  assert.equal(rows(f.relay.store, 'relay.login.refused').length, 10);
  await eventually(() => f.relay.connections() === 0 || null, 10_000, 'the relay to see every connection close');
  await f.relay.stop();
  const store = openSqliteStore(join(f.dir, 'relay', 'ferry.db'));
  try {
    const all = rows(store, 'relay.login.refused');
    assert.equal(all.length, 11, 'ten rows, then one summary');
    assert.equal(all[10]!.actor, 'relay');
    assert.equal(all[10]!.detail.suppressed, 190);
  } finally {
    store.close();
  }
});

test('device reports arrive as ssh.* rows from the device; a flood of them is bounded', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite, { deviceReportAudit: { perWindow: 50, windowMs: 60_000 } });
  const agent = await f.device('cam');
  await agent.stop();
  // A bare ssh2 client with the device's key stands in for the agent: it registers and opens the watch.
  const { key } = openStateDir(join(f.dir, 'agent-cam'));
  const client = await connectToRelay({
    dialer: tcpDialer('127.0.0.1', f.relay.sshAddress.port, { keepaliveMs: 20_000, redialMs: 0 }), fingerprint: f.relay.fingerprint, key, username: AGENT_LOGIN,
    keepaliveIntervalMs: 20_000, keepaliveCountMax: 3, connectTimeoutMs: 10_000,
  });
  suite.after(() => client.end());
  await new Promise<void>((resolve, reject) => client.forwardIn('cam', 22, (err) => (err ? reject(err) : resolve())));
  const watch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec(AUTHORIZED_KEYS_COMMAND, (err, ch) => (err ? reject(err) : resolve(ch))));
  watch.resume();
  watch.stderr.resume();
  const report = (i: number) => encodeDeviceReport({ event: 'session.end', at: 1_700_000_000_000 + i, operator: 'admin', login: 'pi', detail: { session: `s${i}`, exit: i % 256, durationMs: 5 } });
  watch.write(encodeDeviceReport({ event: 'login', at: 1, operator: 'admin', login: 'pi', detail: { key: 'SHA256:x', from: '127.0.0.1' } }));
  // A line that is not a report is skipped, and the ones after it are read.
  watch.write('this is not a report\n');
  // Split across writes, as TCP may deliver it.
  const split = report(0);
  watch.write(split.slice(0, 10));
  watch.write(split.slice(10));
  const first = await eventually(() => { const x = f.relay.store.listAudit({ limit: 100 }).filter((a) => a.action.startsWith('ssh.')); return x.length === 2 ? x : null; }, 10_000, 'two ssh.* rows');
  assert.deepEqual(first.map((a) => [a.action, a.actor, a.target]), [['ssh.login', 'admin', 'cam'], ['ssh.session.end', 'admin', 'cam']]);
  assert.equal(first[1]!.detail.exit, 0);
  assert.equal(first[1]!.detail.login, 'pi');
  assert.deepEqual(first.map((a) => a.source), ['device', 'device']);
  for (let i = 1; i <= 1000; i++) watch.write(report(i));
  await eventually(() => rows(f.relay.store, 'ssh.session.end').length >= 49 || null, 10_000, 'the flood to be read');
  client.end();
  const summary = await eventually(() => rows(f.relay.store, 'ssh.reports.dropped')[0], 10_000, 'the summary row once the channel closes');
  assert.equal(rows(f.relay.store, 'ssh.session.end').length, 49, 'fifty rows in the window (one was the login), the rest summed up');
  assert.equal(summary.detail.suppressed, 952, 'the login, the first report and the flood: 1002, of which 50 were written');
});

/** Adds role `role` and user `name` bound to it, with a new key; returns the user's ssh setup and key fingerprint. */
function userWithRole(f: Fixture, name: string, role: { name: string; devices: string[]; logins?: string[] }) {
  const key = makeKey(f.dir, `${name}_key`);
  const pub = parsePublicKey(readFileSync(`${key.path}.pub`, 'utf8').trim());
  const now = Date.now();
  f.relay.store.addRole({ logins: ['*'], forwards: [], actions: [], ...role }, now);
  f.relay.store.addUser(name, [role.name], [{ fingerprint: pub.fingerprint, line: pub.line }], now);
  f.relay.reconcile();
  trustOnDevices(f, key.pub);
  return { setup: f.setupFor(name, key.path), fingerprint: pub.fingerprint };
}

test('a device no role of the user covers is refused at channel open, with a message naming the rule, and audited', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  await f.device('door');
  f.relay.store.setDeviceLabels('cam', { site: 'berlin' });
  f.relay.store.setDeviceLabels('door', { site: 'paris' });
  const carol = userWithRole(f, 'carol', { name: 'berlin-ops', devices: ['site=berlin'] });
  const ok = await ssh(carol.setup, ['cam', 'echo in']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'in\n');
  assert.deepEqual(rows(f.relay.store, 'reach.start').map((r) => [r.actor, r.target]), [['carol', 'cam']]);
  const no = await ssh(carol.setup, ['door', 'echo in']);
  assert.equal(no.code, 255);
  // Carol may not list every device: she is told the rule, not that 'door' exists or its labels.
  assert.match(no.stderr, /'carol' may reach no device named 'door' \(roles berlin-ops: devices site=berlin\); 'devices' lists the ones you may reach/);
  assert.doesNotMatch(no.stderr, /site=paris/);
  const refused = rows(f.relay.store, 'reach.refused');
  assert.equal(refused.length, 1);
  assert.deepEqual([refused[0]!.actor, refused[0]!.target], ['carol', 'door']);
  // The audit log, for those who may read it, has the whole decision.
  assert.match(String(refused[0]!.detail.why), /'carol' may not reach device 'door' \(labels site=paris\): no role covers it/);
});

test('a role change ends a live ProxyJump session within a second, audited as access revoked', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  f.relay.store.setDeviceLabels('cam', { site: 'berlin' });
  const dave = userWithRole(f, 'dave', { name: 'cams', devices: ['site=berlin'] });
  const s = spawnSsh(dave.setup, 'cam', 'sleep 60');
  await liveReaches(f, 1, 'cam');
  const t0 = Date.now();
  assert.equal(f.relay.store.updateRole({ name: 'cams', devices: ['site=paris'], logins: ['*'], forwards: [], actions: [] }, t0), true);
  f.relay.reconcile();
  const exitedAt = await s.exited;
  const ms = exitedAt - t0;
  assert.ok(ms < 1_000, `dave's ssh ended ${ms} ms after the role change`);
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[0], 5_000, 'the reach.end row');
  assert.equal(end.actor, 'dave');
  assert.match(String(end.detail.why), /^access revoked: 'dave' may not reach device 'cam' \(labels site=berlin\): no role covers it/);
  console.log(`# role change to ssh exit: ${ms} ms`);
});

test('a removed key ends the connection that logged in with it, and its sessions', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  const erin = userWithRole(f, 'erin', { name: 'all', devices: ['*'] });
  const s = spawnSsh(erin.setup, 'cam', 'sleep 60');
  await liveReaches(f, 1, 'cam');
  const t0 = Date.now();
  assert.equal(f.relay.store.removeUserKey('erin', erin.fingerprint), true);
  f.relay.reconcile();
  const exitedAt = await s.exited;
  assert.ok(exitedAt - t0 < 1_000, `erin's ssh ended ${exitedAt - t0} ms after the key was removed`);
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[0], 5_000, 'the reach.end row');
  assert.equal(end.detail.why, `access revoked: key ${erin.fingerprint} of 'erin' was removed`);
  assert.equal(f.relay.sessions.connections().filter((c) => c.principal.user === 'erin').length, 0);
});

test('a ProxyJump command to a built-in-server device is on the record: the relay\'s reach rows and the device\'s login and exit status', { timeout: 60_000 }, async () => {
  const e = await startEmbedded(suite, { cam: null });
  const r = await ssh(e.admin, [`${LOGIN}@cam`, 'echo hi; exit 3']);
  assert.equal(r.code, 3, r.stderr);
  const store = e.f.relay.store;
  const ended = await eventually(() => rows(store, 'ssh.session.end')[0], 10_000, 'the device\'s ssh.session.end row');
  assert.equal(ended.source, 'device');
  assert.equal(ended.actor, 'admin');
  assert.equal(ended.target, 'cam');
  assert.equal(ended.detail.exit, 3);
  assert.equal(ended.detail.login, LOGIN);
  const login = rows(store, 'ssh.login')[0]!;
  assert.deepEqual([login.source, login.actor, login.detail.login], ['device', 'admin', LOGIN]);
  const end = await eventually(() => rows(store, 'reach.end')[0], 10_000, 'the relay\'s reach.end row');
  assert.equal(end.source, 'relay');
  assert.ok((end.detail.bytesIn as number) > 0 && (end.detail.bytesOut as number) > 0);
});

test('a role edited with the local CLI ends a live session within a second of the command (the store watcher)', { timeout: 60_000 }, async () => {
  const f = await startFixture(suite);
  await f.device('cam');
  f.relay.store.setDeviceLabels('cam', { site: 'berlin' });
  const gina = userWithRole(f, 'gina', { name: 'berliners', devices: ['site=berlin'] });
  const s = spawnSsh(gina.setup, 'cam', 'sleep 60');
  await liveReaches(f, 1, 'cam');
  const edit = await run(process.execPath, [FERRY, 'role', 'edit', 'berliners', '--devices', 'site=paris', '--data-dir', join(f.dir, 'relay')], { timeoutMs: 30_000 });
  const t0 = Date.now();
  assert.equal(edit.code, 0, edit.stderr);
  const ms = (await s.exited) - t0;
  assert.ok(ms < 1_000, `gina's ssh ended ${ms} ms after the local command exited`);
  const end = await eventually(() => rows(f.relay.store, 'reach.end')[0], 5_000, 'the reach.end row');
  assert.match(String(end.detail.why), /^access revoked: 'gina' may not reach device 'cam'/);
  console.log(`# local role edit to ssh exit: ${ms} ms`);
});
