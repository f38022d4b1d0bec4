/** The agent's state dir: its identity key and what enrollment settled (relay endpoints, pins, name, target). */
import { existsSync, mkdirSync, readFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../common/errors.ts';
import { loadOrCreateKey, writePrivateFile, type KeyPair } from '../common/ssh-keys.ts';
import { deviceNameProblem } from '../protocol/names.ts';
import { parseRelayEndpoint } from '../protocol/relay-endpoint.ts';
import { TLS_PIN } from '../protocol/token.ts';
import type { SshTarget } from './config.ts';

/** What an enrolled agent remembers. */
export interface Enrollment {
  /** Where the relay is, in the order to try (relay-endpoint.ts: HOST:PORT or wss://…); at least one. */
  endpoints: string[];
  /** The pin of the relay's TLS key for wss endpoints (token.ts TLS_PIN), or null: verify against the system's CAs. */
  tlsPin: string | null;
  /** The endpoint that last connected, tried first next time (endpoints.ts). */
  lastGood?: string;
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
  let e: Partial<Enrollment> & { relay?: unknown };
  try {
    e = JSON.parse(readFileSync(file, 'utf8')) as Partial<Enrollment>;
  } catch {
    throw new FerryError('FERRY_STATE_INVALID', `${file} is damaged: move it away and enrol again with a new token`);
  }
  // Written before the endpoint list (ferry2 tokens): one `relay`, HOST:PORT, and no TLS pin.
  if (e.endpoints === undefined && typeof e.relay === 'string') e = { ...e, endpoints: [e.relay], tlsPin: null };
  if (e.tlsPin === undefined) e = { ...e, tlsPin: null };
  const endpointsOk = Array.isArray(e.endpoints) && e.endpoints.length > 0
    && e.endpoints.every((x) => typeof x === 'string' && !('problem' in parseRelayEndpoint(x)));
  if (!endpointsOk || (e.tlsPin !== null && (typeof e.tlsPin !== 'string' || !TLS_PIN.test(e.tlsPin)))
    || (e.lastGood !== undefined && typeof e.lastGood !== 'string')
    || typeof e.fingerprint !== 'string' || typeof e.name !== 'string' || deviceNameProblem(e.name) !== null
    || (e.relayHostKey !== undefined && typeof e.relayHostKey !== 'string')
    || (e.sshTarget !== 'embedded' && (typeof e.sshTarget?.host !== 'string' || typeof e.sshTarget?.port !== 'number'))) {
    throw new FerryError('FERRY_STATE_INVALID', `${file} is incomplete: move it away and enrol again with a new token`);
  }
  const { relay: _oldRelay, ...rest } = e;
  return rest as Enrollment;
}

/**
 * Saves the enrollment (0600: it names the relay and the pinned key). `relay` is written too,
 * for an older agent (which reads only that): the first HOST:PORT endpoint, else the first.
 */
export function writeEnrollment(dir: string, e: Enrollment): void {
  const relay = e.endpoints.find((x) => (parseRelayEndpoint(x) as { transport?: string }).transport === 'tcp') ?? e.endpoints[0];
  writePrivateFile(join(dir, ENROLLMENT_FILE), JSON.stringify({ relay, ...e }, null, 2) + '\n');
}
