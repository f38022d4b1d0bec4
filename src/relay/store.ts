/**
 * The relay's store interface: users, roles, devices, tokens, presence and audit.
 * SQLite implements it today (sqlite-store.ts); the interface is what a PostgreSQL
 * store for a cluster of relays would implement later.
 */

import type { RoleSpec } from './access-policy.ts';

/** Device approval state. */
export type DeviceStatus = 'pending' | 'approved' | 'revoked';

/** Why a device's last link ended. Stable strings: shown to users and matched by scripts. */
export type DisconnectReason =
  | 'agent closed'
  | 'keepalive timeout'
  | 'connection lost'
  | 'replaced by a newer link'
  | 'revoked'
  | 'removed'
  | 'relay shutdown'
  | 'relay restarted';

/** A role as stored: what access-policy.ts decides with, and when it was made and last changed. */
export interface RoleRecord extends RoleSpec { createdAt: number; updatedAt: number }

/** An operator key: its SHA-256 fingerprint and its authorized_keys line. */
export interface UserKey { fingerprint: string; line: string }

/** An operator: the names of their roles (sorted) and their keys (by fingerprint). */
export interface UserRecord {
  name: string;
  roles: string[];
  createdAt: number;
  keys: UserKey[];
}

/** A user with the roles bound to it resolved: what the policy decides with. */
export interface SubjectRecord { name: string; keys: UserKey[]; roles: RoleSpec[] }

export interface DeviceRecord {
  name: string;
  status: DeviceStatus;
  keyFingerprint: string;
  keyLine: string;
  labels: Record<string, string>;
  createdAt: number;
  /** Set while a link is registered; null when offline. */
  onlineSince: number | null;
  /** When the relay last heard from it: the end of its last link, or now while online. */
  lastSeen: number | null;
  remoteAddress: string | null;
  agentVersion: string | null;
  lastDisconnectReason: DisconnectReason | null;
  /** The device's own SSH host key (`ssh-ed25519 AAAA…`), for operators' known_hosts; null if it reported none. */
  hostKeyLine: string | null;
}

export interface TokenRecord {
  id: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  usesLeft: number;
  name: string | null;
  labels: Record<string, string>;
  approve: boolean;
}

/** A token as `token ls` shows it: what was stored at creation, and when it was revoked (null: never). */
export interface StoredToken extends TokenRecord { revokedAt: number | null }

/** Who wrote an audit row: the relay itself, or a device reporting what happened on it. */
export type AuditSource = 'relay' | 'device';

/** An audit row to write; `source` defaults to 'relay'. */
export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  source?: AuditSource;
}

/** An audit row as written, with its place in the hash chain (see audit-chain.ts). */
export interface AuditRecord extends Required<AuditEntry> { id: number; prevHash: string; hash: string }

/** Which audit rows to list. `action` is exact, or a prefix when it ends in `.*` (`reach.*`). */
export interface AuditFilter {
  since?: number;
  until?: number;
  /** The row's target. */
  device?: string;
  /** The row's actor. */
  user?: string;
  action?: string;
  /** Only rows older than this id: the next page back from a page whose first row it is. */
  beforeId?: number;
  limit: number;
}

/** What `verifyAudit` found; on failure `badId` is the changed, inserted or missing row (0: the head itself) and `problem` says which in words. */
export type AuditVerdict =
  | { ok: true; rows: number; head: string | null }
  | { ok: false; rows: number; badId: number; problem: string };

/** A session recording (recordings.ts): who, where, when, and its file; size and sha256 once it has ended. */
export interface RecordingRecord {
  id: string;
  sessionId: string;
  device: string;
  user: string;
  login: string;
  startedAt: number;
  /** Null while it is being written (or when the relay died before it ended). */
  endedAt: number | null;
  /** The .cast file, relative to the data dir (`recordings/YYYY/MM/DD/ID.cast`). */
  path: string;
  bytes: number | null;
  sha256: string | null;
}

/** Which recordings to list, newest first. `endedBefore` finds those past their retention, `unfinished` those without an end. */
export interface RecordingFilter { device?: string; user?: string; endedBefore?: number; unfinished?: boolean; limit: number }

/** A one-time console sign-in link as stored: only the hash of its secret. */
export interface LoginLinkRecord { user: string; createdAt: number; expiresAt: number; usedAt: number | null }

/** Why a sign-in link was not redeemed. */
export type LoginLinkRefusal = 'unknown' | 'used' | 'expired';

/**
 * A console session (its cookie) as stored: the hash of the cookie's secret is the key, `id`
 * is a public name for it (audit rows, the principal), `csrf` what state-changing requests echo.
 */
export interface WebSessionRecord { id: string; user: string; csrf: string; createdAt: number; expiresAt: number; remoteAddress: string }

/** What the relay keeps. Every method is a single transaction; `transaction` groups several into one. */
export interface Store {
  close(): void;
  /**
   * Runs `fn` as one transaction: every store call inside commits together, or none does
   * when `fn` throws. A change and its audit row go in one, so neither is kept without the other.
   * It holds the write lock from its start, so keep it short.
   */
  transaction<T>(fn: () => T): T;
  /** A number that changes whenever another process commits; cheap to call often. */
  changeCounter(): number;

  countUsers(): number;
  /** Adds a user bound to `roles`; FERRY_CONFLICT for a name or key in use, FERRY_NOT_FOUND for an unknown role. */
  addUser(name: string, roles: string[], keys: UserKey[], now: number): void;
  removeUser(name: string): boolean;
  listUsers(): UserRecord[];
  getUser(name: string): UserRecord | null;
  /** The user holding the key with `fingerprint`, or null. */
  getUserByKey(fingerprint: string): UserRecord | null;
  /** Replaces a user's roles; false when there is no such user, FERRY_NOT_FOUND for an unknown role. */
  setUserRoles(name: string, roles: string[]): boolean;
  /** Adds a key to a user; FERRY_NOT_FOUND when there is no such user, FERRY_CONFLICT when a user or device has the key. */
  addUserKey(name: string, key: UserKey): void;
  /** Removes one of a user's keys; false when that user has no such key. */
  removeUserKey(name: string, fingerprint: string): boolean;
  /** Users with their roles resolved, in one read: what authorizedKeysFor and the session checks take. */
  listSubjects(): SubjectRecord[];

  /** Adds a role; FERRY_CONFLICT when one has that name. */
  addRole(role: RoleSpec, now: number): void;
  /** Replaces a role's rules; false when there is no such role. */
  updateRole(role: RoleSpec, now: number): boolean;
  /** Removes a role and every binding of a user to it; false when there is no such role. */
  removeRole(name: string): boolean;
  /** Every role, by name. */
  listRoles(): RoleRecord[];
  getRole(name: string): RoleRecord | null;

  createToken(token: TokenRecord, secretHash: Buffer): void;
  /** Every token ever made, newest first; never the secret hash. */
  listTokens(): StoredToken[];
  /** Marks a token revoked so that it enrols nothing more; false when there is none or it was revoked already. */
  revokeToken(id: string, at: number): boolean;
  /** Checks and consumes one use of a token, creating the device; throws FerryError on refusal. */
  redeemToken(args: { id: string; secretHash: Buffer; requestedName: string | null; fallbackName: string | null; keyFingerprint: string; keyLine: string; hostKeyLine?: string | null; now: number }): DeviceRecord;

  getDevice(name: string): DeviceRecord | null;
  getDeviceByKey(fingerprint: string): DeviceRecord | null;
  listDevices(): DeviceRecord[];
  setDeviceStatus(name: string, status: DeviceStatus): boolean;
  /** Replaces a device's labels; false when there is no such device. */
  setDeviceLabels(name: string, labels: Record<string, string>): boolean;
  removeDevice(name: string): boolean;
  /** Records a new link; `replaced` when it took over from a link that was still registered. */
  markOnline(name: string, at: number, remoteAddress: string, agentVersion: string | null, replaced?: boolean): void;
  markOffline(name: string, at: number, reason: DisconnectReason): void;
  /** At start: no link survives a relay restart, so whatever the store says is online is not. */
  markAllOffline(at: number, reason: DisconnectReason): number;

  /** Records that the relay is running now; after a crash, the last one is when its devices were last seen. */
  heartbeat(at: number): void;
  lastHeartbeat(): number | null;

  /** Adds a recording as it starts (no end, size or hash yet); FERRY_CONFLICT for an id in use. */
  addRecording(r: Omit<RecordingRecord, 'endedAt' | 'bytes' | 'sha256'>): void;
  /** Sets a recording's end, size and sha256; false when there is no such recording. */
  finishRecording(id: string, end: { endedAt: number; bytes: number; sha256: string }): boolean;
  /** Recordings that match, newest first. */
  listRecordings(filter: RecordingFilter): RecordingRecord[];
  getRecording(id: string): RecordingRecord | null;
  /** Forgets a recording's row (its file is the caller's); false when there is none. */
  removeRecording(id: string): boolean;

  /** Stores a sign-in link by the sha256 of its secret. */
  addLoginLink(secretHash: Buffer, link: Omit<LoginLinkRecord, 'usedAt'>): void;
  /**
   * Spends a sign-in link: its user, or why not. Marks it used in the same transaction, so
   * that two requests with one link cannot both sign in.
   */
  redeemLoginLink(secretHash: Buffer, now: number): { user: string } | { refused: LoginLinkRefusal; user: string | null };
  /** Stores a console session by the sha256 of its cookie's secret. */
  addWebSession(secretHash: Buffer, session: WebSessionRecord): void;
  /** The console session whose cookie secret hashes to `secretHash`, expired or not; null when there is none. */
  getWebSession(secretHash: Buffer): WebSessionRecord | null;
  /** Ends one console session by its public id; false when there is none. */
  removeWebSession(id: string): boolean;
  /**
   * Deletes the console sessions expired by `now` and returns them (for their audit rows),
   * and the sign-in links expired longer than `keepLinksMs` ago.
   */
  expireWebAuth(now: number, keepLinksMs: number): WebSessionRecord[];

  /** Appends a row to the audit chain and moves its head, in one transaction. */
  audit(entry: AuditEntry): AuditRecord;
  /** The newest `limit` rows that match, oldest first. */
  listAudit(filter: AuditFilter): AuditRecord[];
  /** Every row in id order, read in batches as it goes (for export and verify); other store calls may run in between. */
  iterateAudit(): IterableIterator<AuditRecord>;
  /** Walks the whole chain and checks it against the head (see audit-chain.ts). */
  verifyAudit(): AuditVerdict;
}
