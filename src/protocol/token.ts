/**
 * Enrollment token format. A token carries everything an agent needs to trust the relay
 * on first contact: where it is, its host-key fingerprint, and a one-off secret.
 * Pure; runs in Node and in the browser.
 */

import { MAX_RELAY_ENDPOINTS, parseRelayEndpoint } from './relay-endpoint.ts';

/**
 * Version 3 (written): `ferry3.` + base64url JSON + `.` + CRC-32 of everything before that
 * dot, as 8 lowercase hex digits; the JSON lists the relay's endpoints and may pin its TLS key.
 * Version 2 (still read): the same with one HOST:PORT. Version 1 (still read): `ferry1.` +
 * base64url JSON, no checksum, so one mistyped character could silently change the address.
 */
const PREFIX = 'ferry3.';
const PREFIX_V2 = 'ferry2.';
const PREFIX_V1 = 'ferry1.';
const CHECKED = /^(ferry[23]\.[A-Za-z0-9_-]+)\.([0-9a-f]{8})$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
/** A TLS public-key pin as curl's --pinnedpubkey takes it: sha256// + base64 SHA-256 of the DER SubjectPublicKeyInfo. */
export const TLS_PIN = /^sha256\/\/[A-Za-z0-9+/]{43}=$/;
const TOKEN_ID = /^[a-z0-9]{8,32}$/;
const SECRET = /^[A-Za-z0-9_-]{32,128}$/;

/** What an enrollment token says. */
export interface TokenClaims {
  /**
   * Where the relay is, in the order an agent tries them (relay-endpoint.ts: HOST:PORT or
   * wss://HOST/), as the relay believes the world reaches it. At least one.
   */
  endpoints: string[];
  /**
   * The pin of the relay's TLS key (TLS_PIN) when its wss:// endpoints serve a self-signed
   * certificate; null when they are checked against the system's CAs.
   */
  tlsPin: string | null;
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

/** CRC-32 (IEEE 802.3) lookup table. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/**
 * CRC-32 of an ASCII text, as 8 hex digits. A CRC catches every change confined to 32
 * consecutive bits, so every substituted character and every swap of two neighbours; a
 * deletion it misses with odds of one in four billion. Not a MAC: it guards against typos,
 * the secret and the pinned fingerprint guard against forgery.
 */
function checksumOf(text: string): string {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, '0');
}

/** True when `text` is an endpoint a token of `version` may carry (before version 3, HOST:PORT only). */
function endpointReadable(text: string, version: number): boolean {
  const e = parseRelayEndpoint(text);
  return !('problem' in e) && (version === 3 || e.transport === 'tcp');
}

/** Encodes claims as a token string. */
export function encodeToken(claims: TokenClaims): string {
  const body = PREFIX + toBase64Url(JSON.stringify({ e: claims.endpoints, f: claims.fingerprint, i: claims.id, s: claims.secret, ...(claims.tlsPin ? { t: claims.tlsPin } : {}) }));
  return `${body}.${checksumOf(body)}`;
}

/** Decodes a token, or says what is wrong with it. */
export function decodeToken(token: string): { claims: TokenClaims } | { problem: string } {
  const text = token.trim();
  let payload: string;
  let version = 1;
  if (text.startsWith(PREFIX) || text.startsWith(PREFIX_V2)) {
    const m = CHECKED.exec(text);
    if (m === null || checksumOf(m[1]!) !== m[2]) return { problem: "this token is damaged (checksum mismatch): copy it again from 'token create'" };
    payload = m[1]!.slice(PREFIX.length);
    version = text.startsWith(PREFIX) ? 3 : 2;
  } else if (text.startsWith(PREFIX_V1)) {
    payload = text.slice(PREFIX_V1.length);
  } else {
    return { problem: "this is not a ferry enrollment token (it should start with 'ferry3.'); copy it again from 'token create'" };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fromBase64Url(payload));
  } catch {
    return { problem: "the enrollment token is damaged (it does not decode); copy it again in one piece from 'token create'" };
  }
  // Valid JSON that is not an object (`null`, a number) is as damaged as bad base64.
  if (typeof raw !== 'object' || raw === null) return { problem: "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'" };
  const o = raw as Record<string, unknown>;
  const endpoints = version === 3 ? o.e : [o.r];
  const claims = { endpoints, fingerprint: o.f, id: o.i, secret: o.s, tlsPin: o.t ?? null };
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.length > MAX_RELAY_ENDPOINTS
    || endpoints.some((e) => typeof e !== 'string' || !endpointReadable(e, version))
    || (claims.tlsPin !== null && (typeof claims.tlsPin !== 'string' || !TLS_PIN.test(claims.tlsPin)))
    || typeof claims.fingerprint !== 'string' || !FINGERPRINT.test(claims.fingerprint)
    || typeof claims.id !== 'string' || !TOKEN_ID.test(claims.id)
    || typeof claims.secret !== 'string' || !SECRET.test(claims.secret)) {
    return { problem: "the enrollment token is damaged (a field is missing or malformed); copy it again from 'token create'" };
  }
  return { claims: claims as TokenClaims };
}
