// Covers src/protocol/token.ts: encode/decode round trip, the checksum of ferry2 tokens, ferry1 tokens still read, damaged and foreign tokens, field validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeToken, encodeToken, type TokenClaims } from '../../src/protocol/token.ts';

const CLAIMS: TokenClaims = {
  relay: 'relay.example.com:2222',
  fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8',
  id: '0123456789abcdef',
  secret: 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6',
};

const NOT_FERRY = "this is not a ferry enrollment token (it should start with 'ferry2.'); copy it again from 'token create'";
const CHECKSUM = "this token is damaged (checksum mismatch): copy it again from 'token create'";
const UNDECODABLE = "the enrollment token is damaged (it does not decode); copy it again in one piece from 'token create'";
const MALFORMED = "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'";

/** A version-1 token (no checksum) made of an arbitrary JSON payload, as ferry before issue #9 wrote them. */
function rawToken(payload: unknown): string {
  return 'ferry1.' + Buffer.from(JSON.stringify(payload)).toString('base64url');
}

/** Every character a token is made of, and a few a copy might bring in. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= ';

describe('token', () => {
  test('round trip', () => {
    const token = encodeToken(CLAIMS);
    assert.match(token, /^ferry2\.[A-Za-z0-9_-]+\.[0-9a-f]{8}$/, 'URL-safe, no padding: it survives copy and paste and shells');
    assert.deepEqual(decodeToken(token), { claims: CLAIMS });
  });

  test('ferry1 tokens (no checksum) are still read', () => {
    const v1 = rawToken({ r: CLAIMS.relay, f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret });
    assert.deepEqual(decodeToken(v1), { claims: CLAIMS });
  });

  test('every single-character substitution is caught, at every position', () => {
    const token = encodeToken(CLAIMS);
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      for (const c of ALPHABET) {
        if (c === token[i]) continue;
        const damaged = token.slice(0, i) + c + token.slice(i + 1);
        const r = decodeToken(damaged);
        assert.ok('problem' in r, `accepted with position ${i} changed to '${c}': ${damaged}`);
        // Past the version prefix, the checksum is what notices.
        if (i >= 'ferry2.'.length && c !== ' ') assert.equal(r.problem, CHECKSUM, damaged);
        tried++;
      }
    }
    assert.ok(tried > 10_000, `${tried} substitutions tried`);
  });

  test('every single-character deletion and every swap of neighbours is caught', () => {
    const token = encodeToken(CLAIMS);
    for (let i = 0; i < token.length; i++) {
      const deleted = token.slice(0, i) + token.slice(i + 1);
      assert.ok('problem' in decodeToken(deleted), `accepted with position ${i} deleted: ${deleted}`);
      if (i + 1 < token.length && token[i] !== token[i + 1]) {
        const swapped = token.slice(0, i) + token[i + 1] + token[i] + token.slice(i + 2);
        assert.ok('problem' in decodeToken(swapped), `accepted with positions ${i} and ${i + 1} swapped: ${swapped}`);
      }
    }
  });

  test('a token cut short or with its checksum missing says it is damaged', () => {
    const token = encodeToken(CLAIMS);
    for (const t of [token.slice(0, -1), token.slice(0, -9), token.slice(0, 20), 'ferry2.', `${token}0`, token.toUpperCase().replace('FERRY2.', 'ferry2.')]) {
      assert.deepEqual(decodeToken(t), { problem: CHECKSUM }, t);
    }
  });

  test('surrounding white space is ignored', () => {
    assert.deepEqual(decodeToken(`  ${encodeToken(CLAIMS)}\n`), { claims: CLAIMS });
  });

  test('bracketed IPv6 relay addresses survive', () => {
    const claims = { ...CLAIMS, relay: '[2001:db8::1]:2222' };
    assert.deepEqual(decodeToken(encodeToken(claims)), { claims });
  });

  test('something that is not a ferry token says so', () => {
    for (const t of ['', 'hello', 'ferry3.abc', 'FERRY1.abc', 'FERRY2.abc', 'ssh-ed25519 AAAA']) assert.deepEqual(decodeToken(t), { problem: NOT_FERRY }, t);
  });

  test('a ferry1 token that does not decode is damaged', () => {
    const token = rawToken({ r: CLAIMS.relay, f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret });
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
