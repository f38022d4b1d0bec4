/**
 * The rules for trading an enrollment token for a device identity, as a pure function: the
 * store gathers the facts inside its transaction, asks `redemptionDecision`, and writes what
 * it says. A PostgreSQL store applies the same rules by calling the same function.
 */
import { FerryError } from '../common/errors.ts';
import type { StoredToken } from './store.ts';

/** What the store knows at redemption time, read in the same transaction that will write. */
export interface RedemptionFacts {
  /** The token with this id, or null; `secretMatches` whether the presented secret hashes to its stored hash. */
  token: (StoredToken & { secretMatches: boolean }) | null;
  /** The device already bound to the enrolling key, and the token it enrolled with. */
  deviceOfKey: { name: string; tokenId: string | null } | null;
  /** The name the agent asked for (--name), and the one from its host name. */
  requestedName: string | null;
  fallbackName: string | null;
  /** Whether a device of this name is enrolled already (asked for the name the rules chose). */
  nameTaken: (name: string) => boolean;
  /** Whether the enrolling key is an operator's key. */
  keyIsUsers: boolean;
  now: number;
}

/** Give the key back the device it enrolled already, or create one. */
export type RedemptionDecision =
  | { kind: 'existing'; name: string }
  | { kind: 'create'; name: string; status: 'approved' | 'pending' };

const refused = (message: string) => new FerryError('FERRY_TOKEN_REFUSED', message);

/** Decides one redemption, or throws the FerryError the agent is told. */
export function redemptionDecision(f: RedemptionFacts): RedemptionDecision {
  const t = f.token;
  // One message for unknown and wrong secret, so that token ids cannot be probed.
  if (t === null || !t.secretMatches) throw refused('the relay does not know this enrollment token: ask an admin for a new one (token create)');
  // Before the retry case below: a revoked token gives nothing, not even a device back.
  if (t.revokedAt !== null) throw refused(`this enrollment token was revoked at ${new Date(t.revokedAt).toISOString()} (token rm): ask an admin for a new one`);
  // The same key redeeming the same token again is an agent that enrolled but died before
  // saving its state: give it back its device rather than a "used up" token.
  if (f.deviceOfKey !== null && f.deviceOfKey.tokenId === t.id) return { kind: 'existing', name: f.deviceOfKey.name };
  if (t.expiresAt <= f.now) throw refused(`this enrollment token expired at ${new Date(t.expiresAt).toISOString()}: ask an admin for a new one`);
  if (t.usesLeft <= 0) throw refused('this enrollment token has been used up: ask an admin for a new one');
  if (t.name !== null && f.requestedName !== null && f.requestedName !== t.name) {
    throw refused(`this token is for device '${t.name}', not '${f.requestedName}': drop --name or use a token for that name`);
  }
  const name = t.name ?? f.requestedName ?? f.fallbackName;
  if (name === null) throw refused('no device name: the token does not fix one and the host name is not usable; start the agent with --name NAME');
  if (f.nameTaken(name)) throw new FerryError('FERRY_CONFLICT', `a device named '${name}' is enrolled already: pick another --name, or have an admin run 'device rm ${name}' first`);
  if (f.deviceOfKey !== null) throw new FerryError('FERRY_CONFLICT', 'this agent key is enrolled already as another device');
  if (f.keyIsUsers) throw new FerryError('FERRY_CONFLICT', 'this agent key is an operator key: devices need keys of their own');
  return { kind: 'create', name, status: t.approve ? 'approved' : 'pending' };
}
