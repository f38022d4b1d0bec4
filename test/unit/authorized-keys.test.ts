// Covers src/protocol/authorized-keys.ts (the pushed operator-key list) and the agent's own check of each key in it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { usableOperatorKeys } from '../../src/agent/link.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { encodeAuthorizedKeys, parseAuthorizedKeys } from '../../src/protocol/authorized-keys.ts';

/** The all-zero Ed25519 key of issue #9: a small-order point, so anyone can sign for it. */
const ZERO_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
/** The identity point (0x01 then zeros): every signature with R = identity and s = 0 verifies. */
const IDENTITY_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

test('a list round-trips, and a line that is no Ed25519 key line of the right length makes it malformed', () => {
  const real = generateKeyPair('alice').publicKey.line;
  const key = { user: 'alice', line: real, logins: ['pi'], forwards: ['127.0.0.1:8080'], roles: ['berlin'] };
  assert.deepEqual(parseAuthorizedKeys(encodeAuthorizedKeys({ keys: [key] }).trim()), { keys: [key] });
  // A relay before roles sends neither list: it let every key in as anyone.
  assert.deepEqual(parseAuthorizedKeys(JSON.stringify({ keys: [{ user: 'alice', line: real }] })), { keys: [{ user: 'alice', line: real, logins: ['*'], forwards: ['*'], roles: [] }] });
  assert.equal(parseAuthorizedKeys(JSON.stringify({ keys: [{ ...key, logins: 'pi' }] })), null, 'logins must be a list');
  for (const line of [real.slice(0, -4), `${real}AAAA`, `${real} comment`, real.replace('ssh-ed25519', 'ssh-rsa'), `ssh-ed25519 ${'A'.repeat(68)}`]) {
    assert.equal(parseAuthorizedKeys(JSON.stringify({ keys: [{ user: 'alice', line }] })), null, line);
  }
});

test('the agent drops small-order keys from a pushed list and says whose they were', () => {
  const real = generateKeyPair('alice').publicKey.line;
  const msg = parseAuthorizedKeys(JSON.stringify({ keys: [{ user: 'alice', line: real }, { user: 'mallory', line: ZERO_KEY }, { user: 'eve', line: IDENTITY_KEY }] }));
  assert.ok(msg, 'well-formed lines pass the protocol parser; the point is checked by the agent');
  const dropped: string[] = [];
  assert.deepEqual(usableOperatorKeys(msg.keys, (k, problem) => dropped.push(`${k.user}: ${problem}`)).map((k) => k.user), ['alice']);
  assert.equal(dropped.length, 2);
  assert.match(dropped[0]!, /^mallory: this Ed25519 key is unusable: it is a point of small order/);
  assert.match(dropped[1]!, /^eve: this Ed25519 key is unusable: it is a point of small order/);
});
