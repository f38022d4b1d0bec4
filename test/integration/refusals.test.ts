// Every refusal says what was wrong: the relay is no open proxy, and bad tokens, a wrong
// relay fingerprint, pending devices and non-admins get clear messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decodeToken, encodeToken } from '../../src/protocol/token.ts';
import { fileCleanup, makeKey, run } from '../helpers/env.ts';
import { FERRY, spawnAgent, startFixture, type Fixture } from '../helpers/fixture.ts';
import { relayCommand, ssh } from '../helpers/ssh-client.ts';

let f: Fixture;
const suite = fileCleanup(after);

before(async () => {
  f = await startFixture(suite);
  await f.device('cam');
  await f.device('waiting', { approve: false });
  const gone = await f.device('gone');
  await gone.stop();
  await f.device('banned');
  f.relay.store.setDeviceStatus('banned', 'revoked');
  f.relay.reconcile();
});

/** `ssh -W host:port relay`: what ProxyJump asks the relay for, with the target spelled out. */
function forward(target: string) {
  return ssh(f.admin, ['-W', target, 'relay']);
}

test('the relay refuses to forward to addresses: it is never an open proxy', async () => {
  for (const target of ['127.0.0.1:22', `127.0.0.1:${f.relay.sshAddress.port}`, `127.0.0.1:${f.sshd.port}`, '[::1]:22', 'localhost:22', '198.51.100.7:22']) {
    const r = await forward(target);
    assert.notEqual(r.code, 0, target);
    assert.match(r.stderr, /administratively prohibited: ferry connects only to device names/, target);
    // The hint is this relay's command line for this operator, not a made-up 'relay' on 2222.
    assert.ok(r.stderr.includes(`'ssh -p ${f.relay.sshAddress.port} admin@127.0.0.1 devices' lists them`), r.stderr);
  }
});

test("help and the login banner name this relay's address and the operator", async () => {
  const help = await relayCommand(f.admin, ['help']);
  assert.equal(help.code, 0, help.stderr);
  assert.ok(help.stdout.startsWith(`ferry relay commands (ssh -p ${f.relay.sshAddress.port} admin@127.0.0.1 COMMAND,`), help.stdout);
  const banner = await ssh(f.admin, ['-T', 'relay'], { input: '' });
  assert.ok(banner.stdout.includes(`Reach a device with 'ssh -J admin@127.0.0.1:${f.relay.sshAddress.port} USER@DEVICE'`), banner.stdout);
});

test('unknown device names, other ports, pending, revoked and offline devices are refused, each with its reason', async () => {
  const cases: [string, RegExp][] = [
    ['nosuch:22', /no device named 'nosuch' is enrolled/],
    ['cam:80', /only port 22 .* not 80/],
    ['cam:2222', /only port 22 .* not 2222/],
    ['waiting:22', /device 'waiting' is waiting for approval: an admin runs 'device approve waiting'/],
    ['banned:22', /device 'banned' is revoked/],
    ['gone:22', /connect failed: device 'gone' is offline \(last seen \d+s ago, agent closed\)/],
  ];
  for (const [target, message] of cases) {
    const r = await forward(target);
    assert.notEqual(r.code, 0, target);
    assert.match(r.stderr, message, target);
  }
  const audit = await relayCommand(f.admin, ['audit', '--json']);
  assert.match(audit.stdout, /"reach.refused"/);
});

test('a pending device becomes reachable as soon as it is approved', async () => {
  assert.notEqual((await ssh(f.admin, ['waiting', 'true'])).code, 0);
  const r = await relayCommand(f.admin, ['device', 'approve', 'waiting']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await ssh(f.admin, ['waiting', 'true'])).code, 0);
});

test('an operator who is not an admin can reach devices but not manage the relay', async () => {
  const key = makeKey(f.dir, 'bob_key');
  const add = await relayCommand(f.admin, ['user', 'add', 'bob', '--key', key.pub]);
  assert.equal(add.code, 0, add.stderr);
  const bob = f.setupFor('bob', key.path);
  assert.equal((await relayCommand(bob, ['whoami'])).stdout, `bob (operator) key ${createHash('sha256').update(Buffer.from(key.pub.split(' ')[1]!, 'base64')).digest('base64').replace(/=+$/, '').replace(/^/, 'SHA256:')}\n`);
  // The jump is allowed: the device's sshd answers with its banner (bob's login there is the device's business).
  const jump = await ssh(bob, ['-W', 'cam:22', 'relay'], { input: '' });
  assert.match(jump.stdout, /^SSH-2\.0-OpenSSH/);
  for (const [words, action] of [[['token', 'create'], 'token.create'], [['device', 'revoke', 'cam'], 'device.revoke'], [['user', 'add', 'eve', '--key', key.pub], 'user.add'], [['users'], 'user.list']] as const) {
    const r = await relayCommand(bob, [...words]);
    assert.equal(r.code, 1, words.join(' '));
    assert.equal(r.stderr, `ferry: 'bob' may not run ${action}: no role grants it (roles operator: actions none)\n`);
  }
  // Removing bob ends his live connections and keeps him out.
  const rm = await relayCommand(f.admin, ['user', 'rm', 'bob']);
  assert.equal(rm.code, 0, rm.stderr);
  const r = await relayCommand(bob, ['whoami']);
  assert.equal(r.code, 255);
  assert.match(r.stderr, /Permission denied \(publickey\)/);
});

test('bad command lines get usage and a non-zero exit', async () => {
  const cases: [string[], number, RegExp][] = [
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [['token', 'create', '--ttl', 'soon'], 2, /--ttl 'soon' is not a duration/],
    [['token', 'create', '--name', 'Bad_Name'], 2, /not a DNS label/],
    [['device', 'approve'], 2, /expected 1 argument/],
    [['device', 'approve', 'nosuch'], 1, /no device named 'nosuch'/],
    [['user', 'add', 'x', '--key', 'ssh-rsa AAAAB3NzaC1yc2E'], 2, /--key/],
    [['devices', '--bogus'], 2, /Unknown option '--bogus'/],
  ];
  for (const [words, code, message] of cases) {
    const r = await relayCommand(f.admin, words);
    assert.equal(r.code, code, `${words.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, words.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

/** Runs `ferry agent` to enrol with `token`, expecting a refusal; returns what it printed. */
async function enrolRefused(token: string, extra: string[] = []): Promise<string> {
  const stateDir = join(f.dir, `agent-refused-${randomBytes(4).toString('hex')}`);
  const r = await run(process.execPath, [FERRY, 'agent', '--state-dir', stateDir, '--token', token, '--ssh-target', `127.0.0.1:${f.sshd.port}`, '--log-level', 'error', ...extra], { timeoutMs: 30_000 });
  assert.notEqual(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return r.stderr;
}

function tokenFor(opts: { expiresAt?: number; uses?: number; fingerprint?: string } = {}): string {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  f.relay.store.createToken({ id, createdBy: 'test', createdAt: Date.now(), expiresAt: opts.expiresAt ?? Date.now() + 60_000, usesLeft: opts.uses ?? 1, name: null, labels: {}, approve: true },
    createHash('sha256').update(secret).digest());
  return encodeToken({ endpoints: [`127.0.0.1:${f.relay.sshAddress.port}`], fingerprint: opts.fingerprint ?? f.relay.fingerprint, id, secret, tlsPin: null });
}

test('enrollment refusals: damaged, unknown, expired and reused tokens', async () => {
  assert.match(await enrolRefused('not-a-token'), /not a ferry enrollment token/);
  assert.match(await enrolRefused('ferry1.@@@@'), /token is damaged/);
  const unknown = encodeToken({ endpoints: [`127.0.0.1:${f.relay.sshAddress.port}`], fingerprint: f.relay.fingerprint, id: 'abcdef0123456789', secret: randomBytes(32).toString('base64url'), tlsPin: null });
  assert.match(await enrolRefused(unknown, ['--name', 'x1']), /does not know this enrollment token/);
  assert.match(await enrolRefused(tokenFor({ expiresAt: Date.now() - 1000 }), ['--name', 'x2']), /token expired at/);
  const once = f.token({ approve: true });
  const first = await spawnAgent(suite, join(f.dir, 'agent-once'), ['--token', once, '--name', 'x3', '--ssh-target', `127.0.0.1:${f.sshd.port}`]);
  assert.equal(await first.stop(), 0);
  assert.match(await enrolRefused(once, ['--name', 'x4']), /has been used up/);
});

test('a token removed with token rm enrols nothing: the agent is told it was revoked', async () => {
  const tok = f.token({ approve: true, uses: 5 });
  const { claims } = decodeToken(tok) as { claims: { id: string; secret: string } };
  const ls = await relayCommand(f.admin, ['token', 'ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok((JSON.parse(ls.stdout) as { id: string }[]).some((t) => t.id === claims.id));
  assert.ok(!ls.stdout.includes(claims.secret), 'token ls never shows the secret');
  const rm = await relayCommand(f.admin, ['token', 'rm', claims.id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(await enrolRefused(tok, ['--name', 'x6']), /this enrollment token was revoked at \S+ \(token rm\): ask an admin for a new one/);
  assert.equal(f.relay.store.getDevice('x6'), null);
});

test('an agent refuses a relay whose host key is not the pinned one, and says why', async () => {
  const wrong = 'SHA256:' + createHash('sha256').update('another relay').digest('base64').replace(/=+$/, '');
  const out = await enrolRefused(tokenFor({ fingerprint: wrong }), ['--name', 'x5']);
  assert.match(out, new RegExp(`presented host key ${f.relay.fingerprint.replace(/[+/]/g, '\\$&')}, but this agent pinned ${wrong.replace(/[+/]/g, '\\$&')}: refusing to connect`));
});

test('a second device cannot take an enrolled name', async () => {
  const tok = f.token({ approve: true });
  assert.match(await enrolRefused(tok, ['--name', 'cam']), /a device named 'cam' is enrolled already/);
});
