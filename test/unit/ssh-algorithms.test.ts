// The pure judgement of a peer's guessed first key-exchange packet (RFC 4253 §7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kexGuessIsRight, preferredAlgorithms } from '../../src/protocol/ssh-algorithms.ts';

/** A KEXINIT payload with these kex and host-key name-lists (the rest empty). */
function kexinit(kex: string, hostKey: string): Uint8Array {
  const lists = [kex, hostKey, '', '', '', '', '', '', '', ''];
  const parts = [Buffer.from([20]), Buffer.alloc(16, 7)];
  for (const l of lists) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(l.length);
    parts.push(len, Buffer.from(l));
  }
  parts.push(Buffer.from([1, 0, 0, 0, 0]));
  return new Uint8Array(Buffer.concat(parts));
}

test('preferredAlgorithms reads the first name of the kex and host-key lists', () => {
  assert.deepEqual(preferredAlgorithms(kexinit('curve25519-sha256,ext-info-c', 'ssh-ed25519,rsa-sha2-256')), { kex: 'curve25519-sha256', serverHostKey: 'ssh-ed25519' });
  assert.deepEqual(preferredAlgorithms(kexinit('a', '')), { kex: 'a', serverHostKey: '' });
});

test('preferredAlgorithms refuses a truncated KEXINIT', () => {
  const whole = kexinit('curve25519-sha256', 'ssh-ed25519');
  assert.equal(preferredAlgorithms(whole.subarray(0, 19)), null);
  assert.equal(preferredAlgorithms(whole.subarray(0, 17 + 4 + 5)), null);
  assert.equal(preferredAlgorithms(new Uint8Array(0)), null);
});

test('a guess is right only when both sides put the same kex and host key first', () => {
  const ours = kexinit('curve25519-sha256,curve25519-sha256@libssh.org', 'ssh-ed25519');
  assert.equal(kexGuessIsRight(ours, kexinit('curve25519-sha256,ecdh-sha2-nistp256,kexguess2@matt.ucc.asn.au', 'ssh-ed25519,ecdsa-sha2-nistp256')), true);
  // The negotiated kex would be the same, but the first choices differ: the peer will send its packet again.
  assert.equal(kexGuessIsRight(ours, kexinit('curve25519-sha256@libssh.org,curve25519-sha256', 'ssh-ed25519')), false);
  assert.equal(kexGuessIsRight(ours, kexinit('curve25519-sha256', 'ecdsa-sha2-nistp256,ssh-ed25519')), false);
  assert.equal(kexGuessIsRight(ours, new Uint8Array(3)), false);
});
