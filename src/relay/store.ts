/**
 * The relay's store interface: users, devices, tokens, presence and audit.
 * SQLite implements it today (sqlite-store.ts); the interface is what a PostgreSQL
 * store for a cluster of relays would implement later.
 */

/** Operator roles: admins manage tokens, devices and users; operators reach devices. */
export type Role = 'admin' | 'operator';
export const ROLES: readonly Role[] = ['admin', 'operator'];

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

export interface UserRecord {
  name: string;
  role: Role;
  createdAt: number;
  keys: { fingerprint: string; line: string }[];
}

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

export interface AuditRecord {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
}

/** What the relay keeps. Every method is a single transaction; `transaction` groups several into one. */
export interface Store {
  close(): void;
  /**
   * Runs `fn` as one transaction: every store call inside commits together, or none does
   * when `fn` throws. A change and its audit row go in one, so neither is kept without the other.
   */
  transaction<T>(fn: () => T): T;
  /** A number that changes whenever another process commits; cheap to call often. */
  changeCounter(): number;

  countUsers(): number;
  addUser(name: string, role: Role, keyLines: { fingerprint: string; line: string }[], now: number): void;
  removeUser(name: string): boolean;
  listUsers(): UserRecord[];
  getUser(name: string): UserRecord | null;

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

  audit(entry: Omit<AuditRecord, 'id'>): void;
  listAudit(filter: { since?: number; device?: string; limit: number }): AuditRecord[];
}
