// Covers src/protocol/token.ts: encode/decode round trip, damaged and foreign tokens, field validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeToken, encodeToken, type TokenClaims } from '../../src/protocol/token.ts';

const CLAIMS: TokenClaims = {
  relay: 'relay.example.com:2222',
  fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8',
  id: '0123456789abcdef',
  secret: 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6',
};

const NOT_FERRY = "this is not a ferry enrollment token (it should start with 'ferry1.'); copy it again from 'token create'";
const UNDECODABLE = "the enrollment token is damaged (it does not decode); copy it again in one piece from 'token create'";
const MALFORMED = "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'";

/** A token made of an arbitrary JSON payload, the way encodeToken would wrap it. */
function rawToken(payload: unknown): string {
  return 'ferry1.' + Buffer.from(JSON.stringify(payload)).toString('base64url');
}

describe('token', () => {
  test('round trip', () => {
    const token = encodeToken(CLAIMS);
    assert.match(token, /^ferry1\.[A-Za-z0-9_-]+$/, 'URL-safe, no padding: it survives copy and paste and shells');
    assert.deepEqual(decodeToken(token), { claims: CLAIMS });
  });

  test('surrounding white space is ignored', () => {
    assert.deepEqual(decodeToken(`  ${encodeToken(CLAIMS)}\n`), { claims: CLAIMS });
  });

  test('bracketed IPv6 relay addresses survive', () => {
    const claims = { ...CLAIMS, relay: '[2001:db8::1]:2222' };
    assert.deepEqual(decodeToken(encodeToken(claims)), { claims });
  });

  test('something that is not a ferry token says so', () => {
    for (const t of ['', 'hello', 'ferry2.abc', 'FERRY1.abc', 'ssh-ed25519 AAAA']) assert.deepEqual(decodeToken(t), { problem: NOT_FERRY }, t);
  });

  test('a token that does not decode is damaged', () => {
    const token = encodeToken(CLAIMS);
    for (const t of ['ferry1.', 'ferry1.!!!!', token.slice(0, token.length - 10), token.slice(0, 'ferry1.'.length + 1), 'ferry1.' + Buffer.from('not json').toString('base64url'), 'ferry1.' + Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')]) {
      assert.deepEqual(decodeToken(t), { problem: UNDECODABLE }, t);
    }
  });

  test('valid JSON that is not an object is damaged, not a crash', () => {
    for (const payload of [null, 1, 'text', [], true]) assert.deepEqual(decodeToken(rawToken(payload)), { problem: MALFORMED }, JSON.stringify(payload));
  });

  test('every field is validated', () => {
    const base = { r: CLAIMS.relay, f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret };
    assert.deepEqual(decodeToken(rawToken(base)), { claims: CLAIMS }, 'the unchanged payload is fine');
    const bad: Record<string, unknown>[] = [
      { r: undefined }, { r: 'relay.example.com' }, { r: 'relay example:22' }, { r: 'relay:123456' }, { r: 2222 },
      { f: undefined }, { f: 'MD5:aa:bb' }, { f: CLAIMS.fingerprint + '=' }, { f: CLAIMS.fingerprint.slice(0, -1) },
      { i: undefined }, { i: 'short' }, { i: 'UPPERCASE123' }, { i: 'x'.repeat(33) },
      { s: undefined }, { s: 'tooshort' }, { s: 'a'.repeat(129) }, { s: 'a'.repeat(31) + '+' },
    ];
    for (const change of bad) {
      assert.deepEqual(decodeToken(rawToken({ ...base, ...change })), { problem: MALFORMED }, JSON.stringify(change));
    }
  });
});
