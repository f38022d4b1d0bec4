/**
 * Enrollment token format. A token carries everything an agent needs to trust the relay
 * on first contact: where it is, its host-key fingerprint, and a one-off secret.
 * Pure; runs in Node and in the browser.
 */

const PREFIX = 'ferry1.';
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const TOKEN_ID = /^[a-z0-9]{8,32}$/;
const SECRET = /^[A-Za-z0-9_-]{32,128}$/;

/** What an enrollment token says. */
export interface TokenClaims {
  /** Relay address as HOST:PORT, as the relay believes the world reaches it. */
  relay: string;
  /** The relay's SSH host-key fingerprint, `SHA256:…` as OpenSSH prints it. */
  fingerprint: string;
  /** Public id of the token (stored by the relay in clear, shown in lists). */
  id: string;
  /** Secret part (the relay stores only its hash). */
  secret: string;
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** Encodes claims as a token string. */
export function encodeToken(claims: TokenClaims): string {
  return PREFIX + toBase64Url(JSON.stringify({ r: claims.relay, f: claims.fingerprint, i: claims.id, s: claims.secret }));
}

/** Decodes a token, or says what is wrong with it. */
export function decodeToken(token: string): { claims: TokenClaims } | { problem: string } {
  const text = token.trim();
  if (!text.startsWith(PREFIX)) return { problem: "this is not a ferry enrollment token (it should start with 'ferry1.'); copy it again from 'token create'" };
  let raw: unknown;
  try {
    raw = JSON.parse(fromBase64Url(text.slice(PREFIX.length)));
  } catch {
    return { problem: "the enrollment token is damaged (it does not decode); copy it again in one piece from 'token create'" };
  }
  // Valid JSON that is not an object (`null`, a number) is as damaged as bad base64.
  if (typeof raw !== 'object' || raw === null) return { problem: "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'" };
  const o = raw as Record<string, unknown>;
  const claims = { relay: o.r, fingerprint: o.f, id: o.i, secret: o.s };
  if (typeof claims.relay !== 'string' || !/^[^\s]+:\d{1,5}$/.test(claims.relay)
    || typeof claims.fingerprint !== 'string' || !FINGERPRINT.test(claims.fingerprint)
    || typeof claims.id !== 'string' || !TOKEN_ID.test(claims.id)
    || typeof claims.secret !== 'string' || !SECRET.test(claims.secret)) {
    return { problem: "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'" };
  }
  return { claims: claims as TokenClaims };
}
