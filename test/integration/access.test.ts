// Who may reach what, end to end, the way issue 10 is checked: two operators with different
// roles against three labelled devices on the agent's built-in server, with the real OpenSSH
// client through the relay. Each reaches exactly what the policy says as exactly the logins
// it allows, is refused with a message naming the rule for everything else, sees only those
// devices in `devices` and `ssh-config`; the audit log shows every attempt, the exit status
// of a ProxyJump command included (reported by the device); changing a role ends a live
// session within a second; and changing, deleting or inserting one audit row in the SQLite
// file makes `audit verify` fail naming the row. The local CLI and `ssh relay COMMAND` give
// the same results. Needs root (real login users on the devices) and util-linux's setpriv.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { eventually, fileCleanup, makeKey, run } from '../helpers/env.ts';
import { cannotSwitchUsers, createAccount, startEmbedded, type EmbeddedFixture, type LocalAccount } from '../helpers/embedded.ts';
import { FERRY } from '../helpers/fixture.ts';
import { relayCommand, ssh, type SshSetup } from '../helpers/ssh-client.ts';
import { storePath } from '../../src/relay/relay.ts';

const suite = fileCleanup(after);
const skip = cannotSwitchUsers();
let e: EmbeddedFixture;
let pi: LocalAccount;
let ops: LocalAccount;
let alice: SshSetup;
let bob: SshSetup;
const dataDir = () => join(e.f.dir, 'relay');

/** Runs a relay command as admin over SSH and returns its stdout; fails the test on a non-zero exit. */
async function admin(words: string[]): Promise<string> {
  const r = await relayCommand(e.admin, words);
  assert.equal(r.code, 0, `${words.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The same command through the local CLI on the relay host. */
function local(words: string[]) {
  return run(process.execPath, [FERRY, ...words, '--data-dir', dataDir()]);
}

interface Row { id: number; actor: string; action: string; target: string | null; source: string; detail: Record<string, unknown> }
async function auditRows(args: string[]): Promise<Row[]> {
  return JSON.parse(await admin(['audit', '--json', '--limit', '10000', ...args])) as Row[];
}

before(async () => {
  if (skip) return;
  e = await startEmbedded(suite, { 'berlin-1': null, 'berlin-2': null, 'paris-1': null });
  pi = createAccount(suite, 'pi');
  ops = createAccount(suite, 'op');
  await admin(['device', 'label', 'berlin-1', 'site=berlin', 'env=dev']);
  await admin(['device', 'label', 'berlin-2', 'site=berlin', 'env=prod']);
  await admin(['device', 'label', 'paris-1', 'site=paris', 'env=dev']);
  await admin(['role', 'add', 'berlin-dev', '--devices', 'site=berlin,env!=prod', '--logins', pi.name]);
  await admin(['role', 'add', 'paris-ops', '--devices', 'site=paris', '--logins', `${pi.name},${ops.name}`]);
  const dir = join(e.f.dir, 'operators');
  mkdirSync(dir);
  const aliceKey = makeKey(dir, 'alice');
  const bobKey = makeKey(dir, 'bob');
  await admin(['user', 'add', 'alice', '--key', aliceKey.pub, '--role', 'berlin-dev']);
  await admin(['user', 'add', 'bob', '--key', bobKey.pub, '--role', 'paris-ops']);
  alice = e.setupFor('alice', aliceKey.path);
  bob = e.setupFor('bob', bobKey.path);
});

test('each operator reaches exactly the devices and logins their roles allow, and is told the rule otherwise', { skip }, async () => {
  const as = (s: SshSetup, login: string, device: string) => ssh(s, [`${login}@${device}`, 'id -un']);
  // Allowed.
  for (const [s, login, device] of [[alice, pi, 'berlin-1'], [bob, pi, 'paris-1'], [bob, ops, 'paris-1']] as const) {
    const r = await as(s, login.name, device);
    assert.equal(r.code, 0, `${login.name}@${device}: ${r.stderr}`);
    assert.equal(r.stdout.trim(), login.name);
  }
  // A device no role covers: the relay refuses the hop, naming the user's roles, and says no
  // more about the device than about a name that is not enrolled at all.
  const prod = await as(alice, pi.name, 'berlin-2');
  assert.notEqual(prod.code, 0);
  assert.match(prod.stderr, /'alice' may reach no device named 'berlin-2' \(roles berlin-dev: devices site=berlin,env!=prod\)/);
  assert.doesNotMatch(prod.stderr, /env=prod/);
  const nowhere = await as(alice, pi.name, 'no-such-device');
  assert.equal(nowhere.stderr.replace(/no-such-device/g, 'X'), prod.stderr.replace(/berlin-2/g, 'X'), 'the same words as for a name that is not enrolled');
  const paris = await as(alice, pi.name, 'paris-1');
  assert.match(paris.stderr, /'alice' may reach no device named 'paris-1'/);
  const berlin = await as(bob, pi.name, 'berlin-1');
  assert.match(berlin.stderr, /'bob' may reach no device named 'berlin-1' \(roles paris-ops: devices site=paris\)/);
  // A covered device, a login the role does not give: the device itself refuses, naming the role.
  const wrongLogin = await as(alice, ops.name, 'berlin-1');
  assert.notEqual(wrongLogin.code, 0);
  assert.match(wrongLogin.stderr, new RegExp(`may not log in as '${ops.name}'.*berlin-dev`));
  const root = await as(alice, 'root', 'berlin-1');
  assert.notEqual(root.code, 0);
  assert.match(root.stderr, /may not log in as 'root'/);
  assert.doesNotMatch(root.stdout, /root/);
});

test('devices and ssh-config show each operator only what they may reach', { skip }, async () => {
  for (const [s, expected] of [[alice, ['berlin-1']], [bob, ['paris-1']]] as const) {
    const r = await relayCommand(s, ['devices', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { name: string }[]).map((d) => d.name), expected);
    const known = await relayCommand(s, ['ssh-config', '--known-hosts']);
    assert.equal(known.code, 0, known.stderr);
    const devicesListed = known.stdout.trim().split('\n').filter((l) => !l.startsWith('[')).map((l) => l.split(/[ ,]/)[0]);
    assert.deepEqual(devicesListed, expected.map((n) => `${n}.ferry`));
  }
  // An admin sees all three.
  assert.deepEqual((JSON.parse(await admin(['devices', '--json'])) as { name: string }[]).map((d) => d.name), ['berlin-1', 'berlin-2', 'paris-1']);
});

test('the audit log shows every attempt, and the exit status of a ProxyJump command as the device reported it', { skip }, async () => {
  const r = await ssh(alice, [`${pi.name}@berlin-1`, 'exit 7']);
  assert.equal(r.code, 7);
  // The device reports the session's end over its link, a moment after the client has seen it.
  const end = await eventually(async () => (await auditRows(['--device', 'berlin-1', '--action', 'ssh.session.end', '--user', 'alice'])).find((x) => x.detail.exit === 7),
    5_000, 'the device\'s report of the session ending with exit status 7');
  assert.equal(end.source, 'device', 'reported by the device, and marked so');
  assert.equal(end.target, 'berlin-1');
  // Refusals on the relay and on the device are on the record too.
  const refused = await auditRows(['--user', 'alice', '--action', 'reach.refused']);
  assert.ok(refused.some((x) => x.target === 'berlin-2'), 'the refused hop to berlin-2');
  const logins = await auditRows(['--user', 'alice', '--action', 'ssh.login.refused']);
  assert.ok(logins.some((x) => x.detail.login === 'root' || JSON.stringify(x.detail).includes("'root'")), `the device's refusal of root: ${JSON.stringify(logins)}`);
  const reaches = await auditRows(['--user', 'alice', '--action', 'reach.end']);
  assert.ok(reaches.length >= 1 && reaches.every((x) => typeof x.detail.bytesIn === 'number' && typeof x.detail.bytesOut === 'number'), 'every reach ends with bytes each way');
  const relayLogins = await auditRows(['--user', 'alice', '--action', 'relay.login']);
  assert.ok(relayLogins.length >= 1, 'relay logins are recorded');
});

test('changing a role ends a live session within a second, on the record', { skip }, async () => {
  const proc = spawn('ssh', ['-F', alice.config, `${pi.name}@berlin-1`, 'echo started; exec sleep 60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  suite.after(() => proc.kill('SIGKILL'));
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number>((resolve) => proc.once('exit', () => resolve(performance.now())));
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('started')) resolve(); });
    proc.once('exit', () => reject(new Error(`the session ended before it started: ${stderr}`)));
  });
  await admin(['role', 'edit', 'berlin-dev', '--devices', 'site=berlin,env=staging']);
  const changed = performance.now();
  const ended = await exited;
  assert.ok(ended - changed < 1000, `the session ended ${Math.round(ended - changed)} ms after the change`);
  const row = await eventually(async () => (await auditRows(['--user', 'alice', '--device', 'berlin-1', '--action', 'reach.end'])).find((x) => /access revoked/.test(String(x.detail.why))),
    5_000, "a reach.end row that says 'access revoked'");
  assert.match(String(row.detail.why), /berlin-dev|role/, 'it says which change revoked it');
  // And alice can no longer reach it at all.
  const again = await ssh(alice, [`${pi.name}@berlin-1`, 'true']);
  assert.match(again.stderr, /may reach no device named 'berlin-1'/);
  await admin(['role', 'edit', 'berlin-dev', '--devices', 'site=berlin,env!=prod']);
});

test('the local CLI and ssh relay COMMAND give the same results', { skip }, async () => {
  for (const words of [['role', 'ls', '--json'], ['users', '--json'], ['audit', 'verify', '--json']]) {
    const viaSsh = await relayCommand(e.admin, words);
    const viaLocal = await local(words);
    assert.equal(viaSsh.code, 0, viaSsh.stderr);
    assert.equal(viaLocal.code, 0, viaLocal.stderr);
    if (words[0] === 'audit') {
      // Rows may have been added between the two runs; each is a verdict on the whole chain.
      assert.equal(JSON.parse(viaSsh.stdout).ok, true);
      assert.equal(JSON.parse(viaLocal.stdout).ok, true);
    } else {
      assert.equal(viaLocal.stdout, viaSsh.stdout, words.join(' '));
    }
  }
});

test('changing, deleting or inserting one audit row makes audit verify fail and name the row', { skip }, async () => {
  /** A consistent copy of the live store, in a data dir of its own. */
  const copy = (name: string) => {
    const dir = join(e.f.dir, `tampered-${name}`);
    mkdirSync(dir);
    const live = new Database(storePath(dataDir()), { readonly: true });
    live.exec(`VACUUM INTO '${storePath(dir)}'`);
    live.close();
    return dir;
  };
  const verify = (dir: string) => run(process.execPath, [FERRY, 'audit', 'verify', '--data-dir', dir]);
  const pristine = copy('none');
  const ok = await verify(pristine);
  assert.equal(ok.code, 0, ok.stderr);

  const middle = (dir: string) => {
    const db = new Database(storePath(dir));
    const { lo, hi } = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM audit').get() as { lo: number; hi: number };
    return { db, id: Math.floor((lo + hi) / 2) };
  };
  const changed = copy('changed');
  {
    const { db, id } = middle(changed);
    db.prepare(`UPDATE audit SET detail = json_set(detail, '$.forged', 1) WHERE id = ?`).run(id);
    db.close();
    const r = await verify(changed);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`row ${id}\\b`));
  }
  const deleted = copy('deleted');
  {
    const { db, id } = middle(deleted);
    db.prepare('DELETE FROM audit WHERE id = ?').run(id);
    db.close();
    const r = await verify(deleted);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`row ${id}\\b`));
  }
  const inserted = copy('inserted');
  {
    const db = new Database(storePath(inserted));
    const last = db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT 1').get() as { id: number; at: number; hash: string };
    db.prepare(`INSERT INTO audit (id, at, actor, action, target, detail, source, prev_hash, hash) VALUES (?, ?, 'mallory', 'user.add', 'mallory', '{}', 'relay', ?, ?)`)
      .run(last.id + 1, last.at + 1, last.hash, 'f'.repeat(64));
    db.close();
    const r = await verify(inserted);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`row ${last.id + 1}\\b`));
  }
});
