/** The agent's state dir: its identity key and what enrollment settled (relay, pinned fingerprint, name, target). */
import { existsSync, mkdirSync, readFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.ts';
import { loadOrCreateKey, writePrivateFile, type KeyPair } from '../common/ssh-keys.ts';
import { deviceNameProblem } from '../protocol/names.ts';
import type { SshTarget } from './config.ts';

/** What an enrolled agent remembers. */
export interface Enrollment {
  relay: string;
  fingerprint: string;
  name: string;
  sshTarget: SshTarget;
  /**
   * The relay's host key line, as the link last verified it against `fingerprint`: the key
   * the built-in server accepts for console sessions. Absent until the first link.
   */
  relayHostKey?: string;
}

const ENROLLMENT_FILE = 'agent.json';

/**
 * Opens the state dir (0700), creating on first use the identity key (how the agent logs in
 * to the relay) and the host key (how its embedded SSH server proves itself to operators).
 */
export function openStateDir(dir: string): { key: KeyPair; hostKey: KeyPair; created: boolean } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const k = loadOrCreateKey(join(dir, 'id_ed25519'), 'ferry-agent');
  const h = loadOrCreateKey(join(dir, 'ssh_host_ed25519_key'), 'ferry-device');
  return { key: { privateKey: k.privateKey, publicKey: k.publicKey }, hostKey: { privateKey: h.privateKey, publicKey: h.publicKey }, created: k.created };
}

/** The saved enrollment, or null before the first successful one. */
export function readEnrollment(dir: string): Enrollment | null {
  const file = join(dir, ENROLLMENT_FILE);
  if (!existsSync(file)) return null;
  let e: Partial<Enrollment>;
  try {
    e = JSON.parse(readFileSync(file, 'utf8')) as Partial<Enrollment>;
  } catch {
    throw new FerryError('FERRY_STATE_INVALID', `${file} is damaged: move it away and enrol again with a new token`);
  }
  if (typeof e.relay !== 'string' || typeof e.fingerprint !== 'string' || typeof e.name !== 'string' || deviceNameProblem(e.name) !== null
    || (e.relayHostKey !== undefined && typeof e.relayHostKey !== 'string')
    || (e.sshTarget !== 'embedded' && (typeof e.sshTarget?.host !== 'string' || typeof e.sshTarget?.port !== 'number'))) {
    throw new FerryError('FERRY_STATE_INVALID', `${file} is incomplete: move it away and enrol again with a new token`);
  }
  return e as Enrollment;
}

/** Saves the enrollment (0600: it names the relay and the pinned key). */
export function writeEnrollment(dir: string, e: Enrollment): void {
  writePrivateFile(join(dir, ENROLLMENT_FILE), JSON.stringify(e, null, 2) + '\n');
}
