// Covers src/protocol/token.ts: encode/decode round trip, the checksum of ferry3 tokens, ferry2 and ferry1 tokens still read, endpoint lists and the TLS pin, damaged and foreign tokens, field validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeToken, encodeToken, type TokenClaims } from '../../src/protocol/token.ts';

const CLAIMS: TokenClaims = {
  endpoints: ['relay.example.com:2222', 'wss://relay.example.com:8443/v1/agent'],
  fingerprint: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8',
  id: '0123456789abcdef',
  secret: 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6',
  tlsPin: 'sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
};
/** What a token of version 1 or 2, which name one HOST:PORT, decodes to. */
const OLD: TokenClaims = { ...CLAIMS, endpoints: ['relay.example.com:2222'], tlsPin: null };
/** A ferry2 token for OLD, as ferry wrote them before the WebSocket link. */
const V2_TOKEN = 'ferry2.eyJyIjoicmVsYXkuZXhhbXBsZS5jb206MjIyMiIsImYiOiJTSEEyNTY6Qy8vVGdsc283em11RDlRM1RVZ2krSk1UWVZ4Yy9qRkVRb2hqRis3MXlnOCIsImkiOiIwMTIzNDU2Nzg5YWJjZGVmIiwicyI6IlptOXZZbUZ5WW1GNmNYVjRabTl2WW1GeVltRjZjWFY0Wm05dlltRnlZbUY2In0.b49bfc38';

const NOT_FERRY = "this is not a ferry enrollment token (it should start with 'ferry3.'); copy it again from 'token create'";
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
    assert.match(token, /^ferry3\.[A-Za-z0-9_-]+\.[0-9a-f]{8}$/, 'URL-safe, no padding: it survives copy and paste and shells');
    assert.deepEqual(decodeToken(token), { claims: CLAIMS });
  });

  test('without a TLS pin the token says so', () => {
    const claims = { ...CLAIMS, tlsPin: null };
    assert.deepEqual(decodeToken(encodeToken(claims)), { claims });
  });

  test('ferry1 tokens (no checksum) and ferry2 tokens (one HOST:PORT) are still read', () => {
    const v1 = rawToken({ r: OLD.endpoints[0], f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret });
    assert.deepEqual(decodeToken(v1), { claims: OLD });
    assert.deepEqual(decodeToken(V2_TOKEN), { claims: OLD });
    const damaged = V2_TOKEN.slice(0, 20) + (V2_TOKEN[20] === 'A' ? 'B' : 'A') + V2_TOKEN.slice(21);
    assert.deepEqual(decodeToken(damaged), { problem: CHECKSUM }, 'a ferry2 token keeps its checksum');
  });

  test('a version-1 token may not carry a wss:// endpoint', () => {
    assert.deepEqual(decodeToken(rawToken({ r: 'wss://relay.example.com/', f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret })), { problem: MALFORMED });
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
        if (i >= 'ferry3.'.length && c !== ' ') assert.equal(r.problem, CHECKSUM, damaged);
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
    for (const t of [token.slice(0, -1), token.slice(0, -9), token.slice(0, 20), 'ferry3.', 'ferry2.', `${token}0`, token.toUpperCase().replace('FERRY3.', 'ferry3.')]) {
      assert.deepEqual(decodeToken(t), { problem: CHECKSUM }, t);
    }
  });

  test('surrounding white space is ignored', () => {
    assert.deepEqual(decodeToken(`  ${encodeToken(CLAIMS)}\n`), { claims: CLAIMS });
  });

  test('bracketed IPv6 relay addresses survive', () => {
    const claims = { ...CLAIMS, endpoints: ['[2001:db8::1]:2222', 'wss://[2001:db8::1]/v1/agent'] };
    assert.deepEqual(decodeToken(encodeToken(claims)), { claims });
  });

  test('something that is not a ferry token says so', () => {
    for (const t of ['', 'hello', 'ferry4.abc', 'FERRY1.abc', 'FERRY3.abc', 'ssh-ed25519 AAAA']) assert.deepEqual(decodeToken(t), { problem: NOT_FERRY }, t);
  });

  test('a ferry1 token that does not decode is damaged', () => {
    const token = rawToken({ r: OLD.endpoints[0], f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret });
    for (const t of ['ferry1.', 'ferry1.!!!!', token.slice(0, token.length - 10), token.slice(0, 'ferry1.'.length + 1), 'ferry1.' + Buffer.from('not json').toString('base64url'), 'ferry1.' + Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')]) {
      assert.deepEqual(decodeToken(t), { problem: UNDECODABLE }, t);
    }
  });

  test('valid JSON that is not an object is damaged, not a crash', () => {
    for (const payload of [null, 1, 'text', [], true]) assert.deepEqual(decodeToken(rawToken(payload)), { problem: MALFORMED }, JSON.stringify(payload));
  });

  test('every field is validated', () => {
    const base = { r: OLD.endpoints[0], f: CLAIMS.fingerprint, i: CLAIMS.id, s: CLAIMS.secret };
    assert.deepEqual(decodeToken(rawToken(base)), { claims: OLD }, 'the unchanged payload is fine');
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

  test('the endpoint list and the TLS pin of a ferry3 token are validated', () => {
    // A ferry3 token is checksummed, so damage is made before the checksum, by re-encoding.
    const bad: Partial<Record<keyof TokenClaims, unknown>>[] = [
      { endpoints: [] }, { endpoints: ['relay.example.com'] }, { endpoints: ['ws://relay.example.com/'] }, { endpoints: 'relay.example.com:2222' },
      { endpoints: Array.from({ length: 9 }, (_, i) => `r${i}.example.com:22`) }, { endpoints: [2222] },
      { tlsPin: 'sha256//short=' }, { tlsPin: 'SHA256:C//Tglso7zmuD9Q3TUgi+JMTYVxc/jFEQohjF+71yg8' }, { tlsPin: 7 },
    ];
    for (const change of bad) {
      const token = encodeToken({ ...CLAIMS, ...change } as TokenClaims);
      assert.deepEqual(decodeToken(token), { problem: MALFORMED }, JSON.stringify(change));
    }
  });
});
