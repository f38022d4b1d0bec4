/** The SQLite store (better-sqlite3, WAL). Migrations are in code and run at open. */
import Database from 'better-sqlite3';
import { timingSafeEqual } from 'node:crypto';
import { FerryError } from '../common/errors.ts';
import type { AuditRecord, DeviceRecord, DeviceStatus, DisconnectReason, Role, Store, StoredToken, TokenRecord, UserRecord } from './store.ts';

/** Schema versions, applied in order; PRAGMA user_version says how many have run. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE user_keys (
    fingerprint TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    line TEXT NOT NULL
  ) STRICT;
  CREATE INDEX user_keys_user ON user_keys(user_name);
  CREATE TABLE devices (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
    key_fingerprint TEXT NOT NULL UNIQUE,
    key_line TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    token_id TEXT,
    created_at INTEGER NOT NULL,
    online_since INTEGER,
    last_seen INTEGER,
    remote_address TEXT,
    agent_version TEXT,
    last_disconnect_reason TEXT
  ) STRICT;
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    uses_left INTEGER NOT NULL,
    name TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    approve INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
  ) STRICT;
  CREATE INDEX audit_at ON audit(at);
  CREATE INDEX audit_target ON audit(target, at);
  `,
  // The device's own SSH host key (its embedded server), reported at enrollment.
  `ALTER TABLE devices ADD COLUMN host_key_line TEXT;`,
  // Small facts about the relay itself, such as when it was last known to be running.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`,
  // When an admin revoked a token (`token rm`). The row stays, so that the agent holding it
  // is told it was revoked rather than unknown, and `token ls --all` still shows it.
  `ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;`,
];

interface DeviceRow {
  name: string; status: DeviceStatus; key_fingerprint: string; key_line: string; labels: string; created_at: number;
  online_since: number | null; last_seen: number | null; remote_address: string | null; agent_version: string | null;
  last_disconnect_reason: DisconnectReason | null; host_key_line: string | null;
}

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    name: r.name, status: r.status, keyFingerprint: r.key_fingerprint, keyLine: r.key_line,
    labels: JSON.parse(r.labels) as Record<string, string>, createdAt: r.created_at,
    onlineSince: r.online_since, lastSeen: r.last_seen, remoteAddress: r.remote_address,
    agentVersion: r.agent_version, lastDisconnectReason: r.last_disconnect_reason, hostKeyLine: r.host_key_line,
  };
}

interface TokenRow {
  id: string; secret_hash: Buffer; created_by: string; created_at: number; expires_at: number; uses_left: number;
  name: string | null; labels: string; approve: number; revoked_at: number | null;
}

function toToken(r: TokenRow): StoredToken {
  return {
    id: r.id, createdBy: r.created_by, createdAt: r.created_at, expiresAt: r.expires_at, usesLeft: r.uses_left,
    name: r.name, labels: JSON.parse(r.labels) as Record<string, string>, approve: r.approve === 1, revokedAt: r.revoked_at,
  };
}

/** Opens (creating and migrating) the store at `file`. */
export function openSqliteStore(file: string): Store {
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new FerryError('FERRY_STORE', `${file} was written by a newer ferry (schema ${version}, this one knows ${MIGRATIONS.length}); upgrade ferry`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('FERRY_STORE', `cannot open the store ${file}: ${(err as Error).message}`, { cause: err });
  }
  return new SqliteStore(db);
}

class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #q;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#q = {
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      countUsers: db.prepare('SELECT count(*) FROM users').pluck(),
      insertUser: db.prepare('INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)'),
      insertKey: db.prepare('INSERT INTO user_keys (fingerprint, user_name, line) VALUES (?, ?, ?)'),
      deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
      users: db.prepare('SELECT name, role, created_at FROM users ORDER BY name'),
      user: db.prepare('SELECT name, role, created_at FROM users WHERE name = ?'),
      keysOf: db.prepare('SELECT fingerprint, line FROM user_keys WHERE user_name = ? ORDER BY fingerprint'),
      insertToken: db.prepare(`INSERT INTO tokens (id, secret_hash, created_by, created_at, expires_at, uses_left, name, labels, approve)
        VALUES (@id, @secretHash, @createdBy, @createdAt, @expiresAt, @usesLeft, @name, @labels, @approve)`),
      token: db.prepare('SELECT * FROM tokens WHERE id = ?'),
      tokens: db.prepare('SELECT * FROM tokens ORDER BY created_at DESC, id'),
      revokeToken: db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      useToken: db.prepare('UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?'),
      device: db.prepare('SELECT * FROM devices WHERE name = ?'),
      deviceByKey: db.prepare('SELECT * FROM devices WHERE key_fingerprint = ?'),
      devices: db.prepare('SELECT * FROM devices ORDER BY name'),
      insertDevice: db.prepare(`INSERT INTO devices (name, status, key_fingerprint, key_line, labels, token_id, created_at, host_key_line)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      setStatus: db.prepare('UPDATE devices SET status = ? WHERE name = ?'),
      setLabels: db.prepare('UPDATE devices SET labels = ? WHERE name = ?'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE name = ?'),
      online: db.prepare(`UPDATE devices SET online_since = ?, last_seen = ?, remote_address = ?, agent_version = ?,
        last_disconnect_reason = ? WHERE name = ?`),
      offline: db.prepare('UPDATE devices SET online_since = NULL, last_seen = ?, last_disconnect_reason = ? WHERE name = ?'),
      allOffline: db.prepare('UPDATE devices SET last_seen = max(online_since, ?), online_since = NULL, last_disconnect_reason = ? WHERE online_since IS NOT NULL'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      insertAudit: db.prepare('INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  close(): void { this.#db.close(); }
  // better-sqlite3 turns a transaction inside another into a savepoint, so the single-call
  // transactions below nest in this one.
  transaction<T>(fn: () => T): T { return this.#db.transaction(fn)(); }
  changeCounter(): number { return this.#q.dataVersion.get() as number; }

  countUsers(): number { return this.#q.countUsers.get() as number; }

  addUser(name: string, role: Role, keys: { fingerprint: string; line: string }[], now: number): void {
    this.#db.transaction(() => {
      if (this.#q.user.get(name)) throw new FerryError('FERRY_CONFLICT', `user '${name}' exists already; remove it first with 'user rm ${name}'`);
      this.#q.insertUser.run(name, role, now);
      for (const k of keys) {
        const owner = this.#db.prepare('SELECT user_name FROM user_keys WHERE fingerprint = ?').pluck().get(k.fingerprint) as string | undefined;
        if (owner !== undefined) throw new FerryError('FERRY_CONFLICT', `key ${k.fingerprint} belongs to user '${owner}' already: every operator needs a key of their own`);
        if (this.#q.deviceByKey.get(k.fingerprint)) throw new FerryError('FERRY_CONFLICT', `key ${k.fingerprint} is a device's key: operators and devices need different keys`);
        this.#q.insertKey.run(k.fingerprint, name, k.line);
      }
    })();
  }

  removeUser(name: string): boolean { return this.#q.deleteUser.run(name).changes > 0; }

  listUsers(): UserRecord[] {
    return (this.#q.users.all() as { name: string; role: Role; created_at: number }[]).map((u) => this.#userWithKeys(u));
  }

  getUser(name: string): UserRecord | null {
    const u = this.#q.user.get(name) as { name: string; role: Role; created_at: number } | undefined;
    return u ? this.#userWithKeys(u) : null;
  }

  #userWithKeys(u: { name: string; role: Role; created_at: number }): UserRecord {
    return { name: u.name, role: u.role, createdAt: u.created_at, keys: this.#q.keysOf.all(u.name) as { fingerprint: string; line: string }[] };
  }

  createToken(t: TokenRecord, secretHash: Buffer): void {
    this.#q.insertToken.run({ ...t, secretHash, labels: JSON.stringify(t.labels), approve: t.approve ? 1 : 0 });
  }

  listTokens(): StoredToken[] { return (this.#q.tokens.all() as TokenRow[]).map(toToken); }
  revokeToken(id: string, at: number): boolean { return this.#q.revokeToken.run(at, id).changes > 0; }

  redeemToken(a: { id: string; secretHash: Buffer; requestedName: string | null; fallbackName: string | null; keyFingerprint: string; keyLine: string; hostKeyLine?: string | null; now: number }): DeviceRecord {
    return this.#db.transaction(() => {
      const t = this.#q.token.get(a.id) as TokenRow | undefined;
      // One message for unknown and wrong secret, so that token ids cannot be probed.
      if (!t || t.secret_hash.length !== a.secretHash.length || !timingSafeEqual(t.secret_hash, a.secretHash)) {
        throw new FerryError('FERRY_TOKEN_REFUSED', 'the relay does not know this enrollment token: ask an admin for a new one (token create)');
      }
      // Before the retry case below: a revoked token gives nothing, not even a device back.
      if (t.revoked_at !== null) throw new FerryError('FERRY_TOKEN_REFUSED', `this enrollment token was revoked at ${new Date(t.revoked_at).toISOString()} (token rm): ask an admin for a new one`);
      // The same key redeeming the same token again is an agent that enrolled but died before
      // saving its state: give it back its device rather than a "used up" token.
      const mine = this.#q.deviceByKey.get(a.keyFingerprint) as (DeviceRow & { token_id: string | null }) | undefined;
      if (mine && mine.token_id === a.id) return toDevice(mine);
      if (t.expires_at <= a.now) throw new FerryError('FERRY_TOKEN_REFUSED', `this enrollment token expired at ${new Date(t.expires_at).toISOString()}: ask an admin for a new one`);
      if (t.uses_left <= 0) throw new FerryError('FERRY_TOKEN_REFUSED', 'this enrollment token has been used up: ask an admin for a new one');
      if (t.name !== null && a.requestedName !== null && a.requestedName !== t.name) {
        throw new FerryError('FERRY_TOKEN_REFUSED', `this token is for device '${t.name}', not '${a.requestedName}': drop --name or use a token for that name`);
      }
      const name = t.name ?? a.requestedName ?? a.fallbackName;
      if (name === null) throw new FerryError('FERRY_TOKEN_REFUSED', 'no device name: the token does not fix one and the host name is not usable; start the agent with --name NAME');
      if (this.#q.device.get(name)) throw new FerryError('FERRY_CONFLICT', `a device named '${name}' is enrolled already: pick another --name, or have an admin run 'device rm ${name}' first`);
      if (mine) throw new FerryError('FERRY_CONFLICT', 'this agent key is enrolled already as another device');
      if (this.#db.prepare('SELECT 1 FROM user_keys WHERE fingerprint = ?').get(a.keyFingerprint)) throw new FerryError('FERRY_CONFLICT', 'this agent key is an operator key: devices need keys of their own');
      this.#q.useToken.run(a.id);
      this.#q.insertDevice.run(name, t.approve ? 'approved' : 'pending', a.keyFingerprint, a.keyLine, t.labels, a.id, a.now, a.hostKeyLine ?? null);
      return toDevice(this.#q.device.get(name) as DeviceRow);
    })();
  }

  getDevice(name: string): DeviceRecord | null {
    const r = this.#q.device.get(name) as DeviceRow | undefined;
    return r ? toDevice(r) : null;
  }

  getDeviceByKey(fp: string): DeviceRecord | null {
    const r = this.#q.deviceByKey.get(fp) as DeviceRow | undefined;
    return r ? toDevice(r) : null;
  }

  listDevices(): DeviceRecord[] { return (this.#q.devices.all() as DeviceRow[]).map(toDevice); }
  setDeviceStatus(name: string, status: DeviceStatus): boolean { return this.#q.setStatus.run(status, name).changes > 0; }
  setDeviceLabels(name: string, labels: Record<string, string>): boolean { return this.#q.setLabels.run(JSON.stringify(labels), name).changes > 0; }
  removeDevice(name: string): boolean { return this.#q.deleteDevice.run(name).changes > 0; }

  markOnline(name: string, at: number, remoteAddress: string, agentVersion: string | null, replaced = false): void {
    this.#q.online.run(at, at, remoteAddress, agentVersion, replaced ? 'replaced by a newer link' : null, name);
  }

  markOffline(name: string, at: number, reason: DisconnectReason): void { this.#q.offline.run(at, reason, name); }
  markAllOffline(at: number, reason: DisconnectReason): number { return this.#q.allOffline.run(at, reason).changes; }

  heartbeat(at: number): void { this.#q.setMeta.run('heartbeat', String(at)); }

  lastHeartbeat(): number | null {
    const v = this.#q.getMeta.get('heartbeat') as string | undefined;
    return v === undefined ? null : Number(v);
  }

  audit(e: Omit<AuditRecord, 'id'>): void {
    this.#q.insertAudit.run(e.at, e.actor, e.action, e.target, JSON.stringify(e.detail));
  }

  listAudit(f: { since?: number; device?: string; limit: number }): AuditRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.since !== undefined) { where.push('at >= ?'); args.push(f.since); }
    if (f.device !== undefined) { where.push('target = ?'); args.push(f.device); }
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...args, f.limit) as { id: number; at: number; actor: string; action: string; target: string | null; detail: string }[];
    return rows.reverse().map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }
}
