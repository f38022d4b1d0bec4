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
  return { type: parsed.type, blob, line: `${parsed.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
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
  return data !== undefined && !(parsed instanceof Error) && !Array.isArray(parsed) && parsed.verify(data, signature, hashAlgo) === true;
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
