/** Ed25519 SSH keys: create, load, parse, fingerprint. Private keys are written at mode 0600 and never logged. */
import { createHash, createPrivateKey, sign, timingSafeEqual } from 'node:crypto';
import { chmodSync, openSync, readFileSync, statSync, writeSync, closeSync, renameSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import ssh2 from 'ssh2';
import { FerryError } from './errors.ts';

const { utils } = ssh2;

/** A parsed public key: its algorithm, wire blob, and the `type base64` line. */
export interface PublicKey {
  type: string;
  blob: Buffer;
  line: string;
  fingerprint: string;
}

/** A key pair held in memory: the private key text for ssh2, and the public key. */
export interface KeyPair {
  privateKey: string;
  publicKey: PublicKey;
}

/** The SHA-256 fingerprint of a public key blob, as OpenSSH prints it (`SHA256:…`, no padding). */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Parses one `ssh-ed25519 AAAA… [comment]` line, or throws a FerryError saying what is wrong. */
export function parsePublicKey(text: string): PublicKey {
  const parsed = utils.parseKey(text.trim());
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) {
    throw new FerryError('FERRY_CONFIG_INVALID', `not an OpenSSH public key: expected one line like 'ssh-ed25519 AAAA… comment'`);
  }
  if (parsed.type !== 'ssh-ed25519') {
    throw new FerryError('FERRY_CONFIG_INVALID', `key type ${parsed.type} is not accepted: ferry uses Ed25519 keys only (make one with 'ssh-keygen -t ed25519')`);
  }
  const blob = parsed.getPublicSSH();
  const problem = ed25519KeyProblem(blob.subarray(ED25519_BLOB_LENGTH - 32));
  if (problem !== null) {
    throw new FerryError('FERRY_CONFIG_INVALID', `this Ed25519 key is unusable: ${problem}; a key like this has no private key, and anyone could sign as it. Make a real one with 'ssh-keygen -t ed25519'`);
  }
  return { type: parsed.type, blob, line: `${parsed.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

/** The field prime of Curve25519/Ed25519, 2^255 - 19. */
const P = 2n ** 255n - 19n;

/**
 * The y coordinates of Ed25519's eight points of small order: the identity (y = 1), the
 * point of order 2 (y = -1), the two of order 4 (y = 0), and the four of order 8 (y = ±Y8,
 * each with both signs of x). They are the points whose multiples by the cofactor 8 give
 * the identity; the unit test checks them against the encodings libsodium refuses.
 */
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
const SMALL_ORDER_Y: readonly bigint[] = [0n, 1n, P - 1n, Y8, P - Y8];

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = base % P;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

/** The curve constant d = -121665/121666 mod P. */
const D = (P - 121665n) * power(121666n, P - 2n) % P;

/** A problem a signature check must refuse: cheap (no field inversions), see ed25519KeyProblem. */
function forgeableProblem(point: Uint8Array): { problem: string } | { y: bigint } {
  if (point.length !== 32) return { problem: 'the key is not 32 bytes long' };
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(point[i]!);
  y &= (1n << 255n) - 1n;
  if (y >= P) return { problem: 'its encoding is not canonical (y ≥ 2^255 - 19)' };
  if (SMALL_ORDER_Y.includes(y)) return { problem: 'it is a point of small order' };
  return { y };
}

/**
 * Why the 32-byte Ed25519 public key `point` is unusable, or null when it is a real key.
 * OpenSSL (and so Node and ssh2) takes any 32 bytes as a key and checks signatures against
 * them; for a point of small order (the identity, the all-zero key, and six more, in any
 * encoding) a valid signature can be made without a private key, so such a key logs in as
 * whoever it is stored for. Non-canonical encodings (y ≥ p) and bytes that are no point on
 * the curve are refused too: ssh-keygen makes neither, and OpenSSL's answer for them is
 * its own business.
 */
export function ed25519KeyProblem(point: Uint8Array): string | null {
  const r = forgeableProblem(point);
  if ('problem' in r) return r.problem;
  // On the curve when x² = u/v, with u = y² - 1 and v = d·y² + 1, has a root: when u·v is
  // a square, by Euler's criterion (u = 0, y = ±1, was refused above as small order).
  const y2 = r.y * r.y % P;
  const uv = (y2 + P - 1n) * ((D * y2 + 1n) % P) % P;
  if (power(uv, (P - 1n) / 2n) !== 1n) return 'it is not a point on the Ed25519 curve';
  return null;
}

/** Parses every key line of an authorized_keys-style text (comments and blank lines skipped). */
export function parsePublicKeys(text: string): PublicKey[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map(parsePublicKey);
}

/** The wire blob of a `type base64 [comment]` key line, decoded without further parsing. */
export function blobOf(line: string): Buffer {
  return Buffer.from(line.split(' ')[1] ?? '', 'base64');
}

/** A public key known only by its wire blob (as offered in an SSH login), without parsing it. */
export function offeredKey(type: string, blob: Buffer): PublicKey {
  return { type, blob, line: `${type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

/**
 * A host key for an ssh2 `Server` (`hostKeys: [{ key: hostKeyForServer(pem) }]`) that signs
 * with a key object parsed once. ssh2 signs from the PEM text, so OpenSSL parses the host
 * key again on every handshake: a fifth of the relay's CPU in a reconnect storm.
 */
export function hostKeyForServer(privateKey: string): ssh2.ParsedKey {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey() || parsed.type !== 'ssh-ed25519') {
    throw new FerryError('FERRY_CONFIG_INVALID', 'the host key is not an Ed25519 private key');
  }
  const keyObject = createPrivateKey(parsed.getPrivatePEM());
  // Ed25519 signs the message itself: no digest to choose, whatever ssh2 passes as `algo`.
  parsed.sign = (data: Buffer) => sign(null, data, keyObject);
  return parsed;
}

/**
 * Whether `signature` over `data` was made with the key whose wire blob is `keyBlob`: the
 * check an SSH server must make itself for a signed public-key login (ssh2 leaves it to us).
 */
export function verifySignature(keyBlob: Buffer, data: Buffer | undefined, signature: Buffer, hashAlgo: string | undefined): boolean {
  const parsed = utils.parseKey(keyBlob);
  if (data === undefined || parsed instanceof Error || Array.isArray(parsed)) return false;
  // A small-order key "verifies" signatures nobody made (see ed25519KeyProblem): refuse it
  // here too, so that a key stored before this check existed still cannot log in.
  if (parsed.type === 'ssh-ed25519' && (keyBlob.length !== ED25519_BLOB_LENGTH || 'problem' in forgeableProblem(keyBlob.subarray(ED25519_BLOB_LENGTH - 32)))) return false;
  return parsed.verify(data, signature, hashAlgo) === true;
}

/** True when two public key blobs are the same key, compared in constant time. */
export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An Ed25519 public key blob: string "ssh-ed25519" and the 32-byte key, each length-prefixed. */
const ED25519_BLOB_LENGTH = 4 + 11 + 4 + 32;
/** Attempts before giving up on generating a well-formed key (each fails with p = 1/256). */
const KEYGEN_ATTEMPTS = 8;

/**
 * Creates a new Ed25519 key pair in memory. ssh2 1.17 writes a malformed key (31-byte public
 * part, unreadable private key) when the public key starts with a zero byte, about one key
 * in 256; such a key is checked for and made again.
 */
export function generateKeyPair(comment: string): KeyPair {
  for (let attempt = 1; ; attempt++) {
    try {
      const { private: privateKey, public: publicLine } = utils.generateKeyPairSync('ed25519', { comment });
      const publicKey = parsePublicKey(publicLine);
      const parsed = utils.parseKey(privateKey);
      if (publicKey.blob.length === ED25519_BLOB_LENGTH && !(parsed instanceof Error) && !Array.isArray(parsed)
        && sameKey(parsed.getPublicSSH(), publicKey.blob)) {
        return { privateKey, publicKey };
      }
    } catch { /* malformed: make another */ }
    if (attempt >= KEYGEN_ATTEMPTS) throw new FerryError('FERRY_STATE_INVALID', 'could not generate a well-formed Ed25519 key');
  }
}

/** Writes a file readable only by its owner, atomically (temp file then rename). */
export function writePrivateFile(path: string, data: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * Loads the Ed25519 private key at `path`, creating it (mode 0600) when absent.
 * Refuses a key file that others can read, as OpenSSH does.
 */
export function loadOrCreateKey(path: string, comment: string): KeyPair & { created: boolean } {
  if (!existsSync(path)) {
    const pair = generateKeyPair(comment);
    writePrivateFile(path, pair.privateKey);
    return { ...pair, created: true };
  }
  const mode = statSync(path).mode & 0o077;
  if (mode !== 0) {
    throw new FerryError('FERRY_STATE_INVALID', `private key ${path} is readable by others (mode ${(statSync(path).mode & 0o777).toString(8)}): run 'chmod 600 ${path}'`);
  }
  const text = readFileSync(path, 'utf8');
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey() || parsed.type !== 'ssh-ed25519') {
    throw new FerryError('FERRY_STATE_INVALID', `${path} is not an unencrypted Ed25519 private key; move it away and ferry will create a new one`);
  }
  const blob = parsed.getPublicSSH();
  return { privateKey: text, publicKey: { type: parsed.type, blob, line: `${parsed.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) }, created: false };
}
