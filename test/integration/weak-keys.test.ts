// Issue #9: Ed25519 keys without a private key (small-order points) are refused wherever keys
// enter the relay, and a forged signature for one cannot log in, even when such a key was
// stored before the check existed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { requestEnrollment } from '../../src/agent/enroll.ts';
import { fingerprintOf, generateKeyPair } from '../../src/common/ssh-keys.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import { ENROLL_LOGIN } from '../../src/protocol/names.ts';
import { run, tempDir } from '../helpers/env.ts';
import { FERRY, startFixture } from '../helpers/fixture.ts';
import { relayCommand } from '../helpers/ssh-client.ts';

/** The all-zero key from the issue (order 4) and the identity point (order 1). */
const ZERO_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const IDENTITY_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/**
 * Logs in as `username` offering `keyLine` with a signature made without any private key:
 * R = the identity point, s = 0, which "verifies" for the identity key whatever is signed.
 * Resolves 'logged in' or the client's error message.
 */
function forgedLogin(port: number, username: string, keyLine: string): Promise<string> {
  const key = ssh2.utils.parseKey(keyLine) as ssh2.ParsedKey;
  // ssh2's client offers only private keys: pretend, and sign without one.
  key.isPrivateKey = () => true;
  key.sign = () => Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]);
  const client = new ssh2.Client();
  return new Promise((resolve) => {
    client.once('ready', () => { client.end(); resolve('logged in'); });
    client.once('error', (err) => { client.end(); resolve(err.message); });
    client.connect({ host: '127.0.0.1', port, username, authHandler: [{ type: 'publickey', username, key }] as never, readyTimeout: 10_000 });
  });
}

test('small-order keys are refused by user add, and a forged signature logs in nowhere', { timeout: 60_000 }, async (t) => {
  const f = await startFixture(t);
  const port = f.relay.sshAddress.port;

  for (const line of [ZERO_KEY, IDENTITY_KEY]) {
    const r = await relayCommand(f.admin, ['user', 'add', 'mallory', '--key', line]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--key: this Ed25519 key is unusable: it is a point of small order; a key like this has no private key, and anyone could sign as it\. Make a real one with 'ssh-keygen -t ed25519'/);
  }
  assert.equal(f.relay.store.getUser('mallory'), null, 'the key was never stored');

  // A store written before this check may hold such a key: the login still fails.
  const blob = Buffer.from(IDENTITY_KEY.split(' ')[1]!, 'base64');
  f.relay.store.addUser('mallory', ['admin'], [{ fingerprint: fingerprintOf(blob), line: IDENTITY_KEY }], Date.now());
  assert.match(await forgedLogin(port, 'mallory', IDENTITY_KEY), /All configured authentication methods failed/);
  // Enrolment accepts any key that signs; not one that anybody can sign for.
  assert.match(await forgedLogin(port, ENROLL_LOGIN, IDENTITY_KEY), /All configured authentication methods failed/);
});

test('an enrolling device that reports a small-order host key is refused, and nothing is stored', { timeout: 60_000 }, async (t) => {
  const f = await startFixture(t);
  const decoded = decodeToken(f.token({ name: 'box', approve: true }));
  assert.ok('claims' in decoded);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: f.relay.sshAddress.port, username: ENROLL_LOGIN, privateKey: generateKeyPair('box').privateKey, readyTimeout: 10_000 });
  });
  t.after(() => client.end());
  await assert.rejects(requestEnrollment(client, { tokenId: decoded.claims.id, secret: decoded.claims.secret, name: null, hostname: null, hostKey: ZERO_KEY }),
    /enrollment refused: the device's host key: this Ed25519 key is unusable: it is a point of small order/);
  assert.equal(f.relay.store.getDevice('box'), null);
});

test("'ferry relay --admin-key' refuses a small-order key before it starts", { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const keyFile = join(dir, 'admin.pub');
  writeFileSync(keyFile, `${ZERO_KEY} mallory\n`);
  const r = await run(process.execPath, [FERRY, 'relay', '--data-dir', join(dir, 'relay'), '--ssh-listen', '127.0.0.1:0', '--admin-key', keyFile], { timeoutMs: 20_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /this Ed25519 key is unusable: it is a point of small order/);
});
