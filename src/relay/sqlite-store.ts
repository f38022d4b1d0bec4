/** The SQLite store (better-sqlite3, WAL). Migrations are in code and run at open. */
import Database from 'better-sqlite3';
import { timingSafeEqual } from 'node:crypto';
import { FerryError } from '../common/errors.ts';
import type { RoleSpec } from './access-policy.ts';
import { auditRowHash, GENESIS_HASH, verifyChain, type ChainHead, type ChainRow } from './audit-chain.ts';
import { redemptionDecision } from './token-redemption.ts';
import type { AuditEntry, AuditFilter, AuditRecord, AuditSource, AuditVerdict, DeviceRecord, DeviceStatus, DisconnectReason, LoginLinkRecord, LoginLinkRefusal, RecordingFilter, RecordingRecord, RoleRecord, Store, StoredToken, SubjectRecord, TokenRecord, UserKey, UserRecord, WebSessionRecord } from './store.ts';

/** The meta key of the audit chain's head, `{"id":N,"hash":"…"}`. */
const AUDIT_HEAD = 'audit_head';

/** Audit rows read per query when walking the whole log (migration, export, verify). */
const AUDIT_BATCH = 1000;

/**
 * Migration 5, roles: the two fixed roles become rows in `roles`, each user is bound to the
 * one its `users.role` named, and that column goes. The audit rows get a source and a hash
 * chain, and the rows already there are chained in id order.
 */
function migrateToRoles(db: Database.Database): void {
  const now = Date.now();
  db.exec(`
    CREATE TABLE roles (
      name TEXT PRIMARY KEY,
      devices TEXT NOT NULL,
      logins TEXT NOT NULL,
      forwards TEXT NOT NULL,
      actions TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE user_roles (
      user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
      role_name TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
      PRIMARY KEY (user_name, role_name)
    ) STRICT;
    CREATE INDEX user_roles_role ON user_roles(role_name);
  `);
  const role = db.prepare('INSERT INTO roles (name, devices, logins, forwards, actions, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const all = JSON.stringify(['*']);
  // What the two roles allowed before roles could be defined: both reach every device as any
  // login with any forward; only admins run the commands that change things.
  role.run('admin', all, all, all, all, now, now);
  role.run('operator', all, all, all, '[]', now, now);
  db.exec(`
    INSERT INTO user_roles (user_name, role_name) SELECT name, role FROM users;
    CREATE TABLE users_new (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL) STRICT;
    INSERT INTO users_new (name, created_at) SELECT name, created_at FROM users;
    DROP TABLE users;
    ALTER TABLE users_new RENAME TO users;
    ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT 'relay' CHECK (source IN ('relay', 'device'));
    ALTER TABLE audit ADD COLUMN prev_hash TEXT;
    ALTER TABLE audit ADD COLUMN hash TEXT;
    CREATE INDEX audit_actor ON audit(actor, at);
    CREATE INDEX audit_action ON audit(action, at);
  `);
  const batch = db.prepare('SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?');
  const setHash = db.prepare('UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?');
  let head: ChainHead = { id: 0, hash: GENESIS_HASH };
  for (;;) {
    const rows = batch.all(head.id, AUDIT_BATCH) as AuditRow[];
    if (rows.length === 0) break;
    for (const r of rows) {
      const hash = auditRowHash({ ...chainRow(r), prevHash: head.hash });
      setHash.run(head.hash, hash, r.id);
      head = { id: r.id, hash };
    }
  }
  if (head.id > 0) db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(AUDIT_HEAD, JSON.stringify(head));
}

/** One step of the schema: SQL, or a function of the database when SQL alone cannot say it. */
type Migration = string | ((db: Database.Database) => void);

/** Schema versions, applied in order; PRAGMA user_version says how many have run. */
const MIGRATIONS: readonly Migration[] = [
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
  migrateToRoles,
  // Session recordings: the files are in the data dir, these rows say whose they are and
  // hold each one's size and sha256 once it ends. No reference to devices: a recording is
  // evidence and outlives the device it was made on.
  `
  CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    device TEXT NOT NULL,
    user TEXT NOT NULL,
    login TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    path TEXT NOT NULL UNIQUE,
    bytes INTEGER,
    sha256 TEXT
  ) STRICT;
  CREATE INDEX recordings_started ON recordings(started_at);
  CREATE INDEX recordings_device ON recordings(device, started_at);
  CREATE INDEX recordings_user ON recordings(user, started_at);
  CREATE INDEX recordings_ended ON recordings(ended_at);
  `,
  // Console sign-in: one-time links and the sessions (cookies) they open, both kept only as
  // the sha256 of their secret, so that a copy of the store signs nobody in. Removing a user
  // removes both; a used link stays until it is old, so that a second try is told "used".
  `
  CREATE TABLE login_links (
    secret_hash BLOB PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  ) STRICT;
  CREATE INDEX login_links_expires ON login_links(expires_at);
  CREATE TABLE web_sessions (
    secret_hash BLOB PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    remote_address TEXT NOT NULL
  ) STRICT;
  CREATE INDEX web_sessions_expires ON web_sessions(expires_at);
  `,
];

interface WebSessionRow { id: string; user_name: string; csrf: string; created_at: number; expires_at: number; remote_address: string }

function toWebSession(r: WebSessionRow): WebSessionRecord {
  return { id: r.id, user: r.user_name, csrf: r.csrf, createdAt: r.created_at, expiresAt: r.expires_at, remoteAddress: r.remote_address };
}

interface RecordingRow {
  id: string; session_id: string; device: string; user: string; login: string; started_at: number;
  ended_at: number | null; path: string; bytes: number | null; sha256: string | null;
}

function toRecording(r: RecordingRow): RecordingRecord {
  return {
    id: r.id, sessionId: r.session_id, device: r.device, user: r.user, login: r.login, startedAt: r.started_at,
    endedAt: r.ended_at, path: r.path, bytes: r.bytes, sha256: r.sha256,
  };
}

interface AuditRow {
  id: number; at: number; actor: string; action: string; target: string | null; detail: string;
  source: AuditSource; prev_hash: string | null; hash: string | null;
}

function chainRow(r: AuditRow): ChainRow {
  return { id: r.id, at: r.at, actor: r.actor, action: r.action, target: r.target, detailText: r.detail, source: r.source, prevHash: r.prev_hash, hash: r.hash };
}

function toAudit(r: AuditRow): AuditRecord {
  return {
    id: r.id, at: r.at, actor: r.actor, action: r.action, target: r.target, detail: JSON.parse(r.detail) as Record<string, unknown>,
    source: r.source, prevHash: r.prev_hash ?? '', hash: r.hash ?? '',
  };
}

interface RoleRow { name: string; devices: string; logins: string; forwards: string; actions: string; created_at: number; updated_at: number }

function toRole(r: RoleRow): RoleRecord {
  const list = (text: string) => JSON.parse(text) as string[];
  return { name: r.name, devices: list(r.devices), logins: list(r.logins), forwards: list(r.forwards), actions: list(r.actions), createdAt: r.created_at, updatedAt: r.updated_at };
}

const specOf = (r: RoleRecord): RoleSpec => ({ name: r.name, devices: r.devices, logins: r.logins, forwards: r.forwards, actions: r.actions });

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
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new FerryError('FERRY_STORE', `${file} was written by a newer ferry (schema ${version}, this one knows ${MIGRATIONS.length}); upgrade ferry`);
    }
    // Foreign keys stay off while migrating: rebuilding a table means dropping the old one,
    // which would otherwise cascade into every table that refers to it (user_keys, user_roles).
    // The check at the end of each step keeps the references sound all the same.
    db.pragma('foreign_keys = OFF');
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.transaction(() => {
        const step = MIGRATIONS[v]!;
        if (typeof step === 'string') db.exec(step);
        else step(db);
        const broken = db.pragma('foreign_key_check') as { table: string }[];
        if (broken.length) throw new Error(`migration ${v + 1} left ${broken.length} broken references (first in table ${broken[0]!.table})`);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
    db.pragma('foreign_keys = ON');
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
      insertUser: db.prepare('INSERT INTO users (name, created_at) VALUES (?, ?)'),
      insertKey: db.prepare('INSERT INTO user_keys (fingerprint, user_name, line) VALUES (?, ?, ?)'),
      keyOwner: db.prepare('SELECT user_name FROM user_keys WHERE fingerprint = ?').pluck(),
      deleteKey: db.prepare('DELETE FROM user_keys WHERE user_name = ? AND fingerprint = ?'),
      deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
      users: db.prepare('SELECT name, created_at FROM users ORDER BY name'),
      user: db.prepare('SELECT name, created_at FROM users WHERE name = ?'),
      keysOf: db.prepare('SELECT fingerprint, line FROM user_keys WHERE user_name = ? ORDER BY fingerprint'),
      allKeys: db.prepare('SELECT user_name, fingerprint, line FROM user_keys ORDER BY user_name, fingerprint'),
      rolesOf: db.prepare('SELECT role_name FROM user_roles WHERE user_name = ? ORDER BY role_name').pluck(),
      bindings: db.prepare('SELECT user_name, role_name FROM user_roles ORDER BY user_name, role_name'),
      bind: db.prepare('INSERT INTO user_roles (user_name, role_name) VALUES (?, ?)'),
      unbindAll: db.prepare('DELETE FROM user_roles WHERE user_name = ?'),
      role: db.prepare('SELECT * FROM roles WHERE name = ?'),
      roles: db.prepare('SELECT * FROM roles ORDER BY name'),
      insertRole: db.prepare(`INSERT INTO roles (name, devices, logins, forwards, actions, created_at, updated_at)
        VALUES (@name, @devices, @logins, @forwards, @actions, @now, @now)`),
      updateRole: db.prepare('UPDATE roles SET devices = @devices, logins = @logins, forwards = @forwards, actions = @actions, updated_at = @now WHERE name = @name'),
      deleteRole: db.prepare('DELETE FROM roles WHERE name = ?'),
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
      lastAudit: db.prepare('SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1'),
      insertAudit: db.prepare('INSERT INTO audit (at, actor, action, target, detail, source, prev_hash) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      setAuditHash: db.prepare('UPDATE audit SET hash = ? WHERE id = ?'),
      auditBatch: db.prepare('SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?'),
      recording: db.prepare('SELECT * FROM recordings WHERE id = ?'),
      insertRecording: db.prepare(`INSERT INTO recordings (id, session_id, device, user, login, started_at, path)
        VALUES (@id, @sessionId, @device, @user, @login, @startedAt, @path)`),
      finishRecording: db.prepare('UPDATE recordings SET ended_at = @endedAt, bytes = @bytes, sha256 = @sha256 WHERE id = @id'),
      deleteRecording: db.prepare('DELETE FROM recordings WHERE id = ?'),
      insertLink: db.prepare('INSERT INTO login_links (secret_hash, user_name, created_at, expires_at) VALUES (?, ?, ?, ?)'),
      link: db.prepare('SELECT user_name, expires_at, used_at FROM login_links WHERE secret_hash = ?'),
      useLink: db.prepare('UPDATE login_links SET used_at = ? WHERE secret_hash = ? AND used_at IS NULL'),
      deleteOldLinks: db.prepare('DELETE FROM login_links WHERE expires_at < ?'),
      insertWebSession: db.prepare(`INSERT INTO web_sessions (secret_hash, id, user_name, csrf, created_at, expires_at, remote_address)
        VALUES (@secretHash, @id, @user, @csrf, @createdAt, @expiresAt, @remoteAddress)`),
      webSession: db.prepare('SELECT * FROM web_sessions WHERE secret_hash = ?'),
      deleteWebSession: db.prepare('DELETE FROM web_sessions WHERE id = ?'),
      expiredWebSessions: db.prepare('DELETE FROM web_sessions WHERE expires_at <= ? RETURNING *'),
    };
  }

  close(): void { this.#db.close(); }
  // better-sqlite3 turns a transaction inside another into a savepoint, so the single-call
  // transactions below nest in this one. IMMEDIATE takes the write lock at the start: a
  // transaction that read first and wrote later would otherwise fail (SQLITE_BUSY_SNAPSHOT)
  // when another process, such as the local CLI, committed in between.
  transaction<T>(fn: () => T): T { return this.#db.transaction(fn).immediate(); }
  changeCounter(): number { return this.#q.dataVersion.get() as number; }

  countUsers(): number { return this.#q.countUsers.get() as number; }

  addUser(name: string, roles: string[], keys: UserKey[], now: number): void {
    this.#db.transaction(() => {
      if (this.#q.user.get(name)) throw new FerryError('FERRY_CONFLICT', `user '${name}' exists already; remove it first with 'user rm ${name}'`);
      this.#q.insertUser.run(name, now);
      this.#bind(name, roles);
      for (const k of keys) this.#addKey(name, k);
    })();
  }

  removeUser(name: string): boolean { return this.#q.deleteUser.run(name).changes > 0; }

  listUsers(): UserRecord[] {
    return (this.#q.users.all() as { name: string; created_at: number }[]).map((u) => this.#userRecord(u));
  }

  getUser(name: string): UserRecord | null {
    const u = this.#q.user.get(name) as { name: string; created_at: number } | undefined;
    return u ? this.#userRecord(u) : null;
  }

  getUserByKey(fingerprint: string): UserRecord | null {
    const owner = this.#q.keyOwner.get(fingerprint) as string | undefined;
    return owner === undefined ? null : this.getUser(owner);
  }

  setUserRoles(name: string, roles: string[]): boolean {
    return this.#db.transaction(() => {
      if (!this.#q.user.get(name)) return false;
      this.#q.unbindAll.run(name);
      this.#bind(name, roles);
      return true;
    })();
  }

  addUserKey(name: string, key: UserKey): void {
    this.#db.transaction(() => {
      if (!this.#q.user.get(name)) throw new FerryError('FERRY_NOT_FOUND', `there is no user '${name}'; 'users' lists them`);
      this.#addKey(name, key);
    })();
  }

  removeUserKey(name: string, fingerprint: string): boolean { return this.#q.deleteKey.run(name, fingerprint).changes > 0; }

  listSubjects(): SubjectRecord[] {
    // One read transaction, so that users, keys and roles are seen as of the same moment.
    return this.#db.transaction(() => {
      const roles = new Map(this.listRoles().map((r) => [r.name, specOf(r)]));
      const subjects = new Map<string, SubjectRecord>();
      for (const u of this.#q.users.all() as { name: string }[]) subjects.set(u.name, { name: u.name, keys: [], roles: [] });
      for (const k of this.#q.allKeys.all() as { user_name: string; fingerprint: string; line: string }[]) {
        subjects.get(k.user_name)?.keys.push({ fingerprint: k.fingerprint, line: k.line });
      }
      for (const b of this.#q.bindings.all() as { user_name: string; role_name: string }[]) {
        const role = roles.get(b.role_name);
        if (role) subjects.get(b.user_name)?.roles.push(role);
      }
      return [...subjects.values()];
    })();
  }

  #userRecord(u: { name: string; created_at: number }): UserRecord {
    return { name: u.name, roles: this.#q.rolesOf.all(u.name) as string[], createdAt: u.created_at, keys: this.#q.keysOf.all(u.name) as UserKey[] };
  }

  #bind(name: string, roles: string[]): void {
    for (const role of new Set(roles)) {
      if (!this.#q.role.get(role)) throw new FerryError('FERRY_NOT_FOUND', `there is no role '${role}'; 'role ls' lists them`);
      this.#q.bind.run(name, role);
    }
  }

  #addKey(name: string, k: UserKey): void {
    const owner = this.#q.keyOwner.get(k.fingerprint) as string | undefined;
    if (owner !== undefined) throw new FerryError('FERRY_CONFLICT', `key ${k.fingerprint} belongs to user '${owner}' already: every operator needs a key of their own`);
    if (this.#q.deviceByKey.get(k.fingerprint)) throw new FerryError('FERRY_CONFLICT', `key ${k.fingerprint} is a device's key: operators and devices need different keys`);
    this.#q.insertKey.run(k.fingerprint, name, k.line);
  }

  addRole(role: RoleSpec, now: number): void {
    this.#db.transaction(() => {
      if (this.#q.role.get(role.name)) throw new FerryError('FERRY_CONFLICT', `role '${role.name}' exists already; change it with 'role edit ${role.name}'`);
      this.#q.insertRole.run(roleParams(role, now));
    })();
  }

  updateRole(role: RoleSpec, now: number): boolean { return this.#q.updateRole.run(roleParams(role, now)).changes > 0; }
  // The bindings go with the role: user_roles refers to it ON DELETE CASCADE.
  removeRole(name: string): boolean { return this.#q.deleteRole.run(name).changes > 0; }
  listRoles(): RoleRecord[] { return (this.#q.roles.all() as RoleRow[]).map(toRole); }

  getRole(name: string): RoleRecord | null {
    const r = this.#q.role.get(name) as RoleRow | undefined;
    return r ? toRole(r) : null;
  }

  createToken(t: TokenRecord, secretHash: Buffer): void {
    this.#q.insertToken.run({ ...t, secretHash, labels: JSON.stringify(t.labels), approve: t.approve ? 1 : 0 });
  }

  listTokens(): StoredToken[] { return (this.#q.tokens.all() as TokenRow[]).map(toToken); }
  revokeToken(id: string, at: number): boolean { return this.#q.revokeToken.run(at, id).changes > 0; }

  redeemToken(a: { id: string; secretHash: Buffer; requestedName: string | null; fallbackName: string | null; keyFingerprint: string; keyLine: string; hostKeyLine?: string | null; now: number }): DeviceRecord {
    return this.#db.transaction(() => {
      // The facts, read in the transaction that writes; the rules are redemptionDecision's.
      const t = this.#q.token.get(a.id) as TokenRow | undefined;
      const mine = this.#q.deviceByKey.get(a.keyFingerprint) as (DeviceRow & { token_id: string | null }) | undefined;
      const decision = redemptionDecision({
        token: t ? { ...toToken(t), secretMatches: t.secret_hash.length === a.secretHash.length && timingSafeEqual(t.secret_hash, a.secretHash) } : null,
        deviceOfKey: mine ? { name: mine.name, tokenId: mine.token_id } : null,
        requestedName: a.requestedName, fallbackName: a.fallbackName,
        nameTaken: (name) => this.#q.device.get(name) !== undefined,
        keyIsUsers: this.#q.keyOwner.get(a.keyFingerprint) !== undefined,
        now: a.now,
      });
      if (decision.kind === 'existing') return toDevice(mine!);
      this.#q.useToken.run(a.id);
      this.#q.insertDevice.run(decision.name, decision.status, a.keyFingerprint, a.keyLine, t!.labels, a.id, a.now, a.hostKeyLine ?? null);
      return toDevice(this.#q.device.get(decision.name) as DeviceRow);
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

  addRecording(r: Omit<RecordingRecord, 'endedAt' | 'bytes' | 'sha256'>): void {
    this.#db.transaction(() => {
      if (this.#q.recording.get(r.id)) throw new FerryError('FERRY_CONFLICT', `recording '${r.id}' exists already`);
      this.#q.insertRecording.run({ id: r.id, sessionId: r.sessionId, device: r.device, user: r.user, login: r.login, startedAt: r.startedAt, path: r.path });
    })();
  }

  finishRecording(id: string, end: { endedAt: number; bytes: number; sha256: string }): boolean {
    return this.#q.finishRecording.run({ id, ...end }).changes > 0;
  }

  listRecordings(f: RecordingFilter): RecordingRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.device !== undefined) { where.push('device = ?'); args.push(f.device); }
    if (f.user !== undefined) { where.push('user = ?'); args.push(f.user); }
    if (f.endedBefore !== undefined) { where.push('ended_at IS NOT NULL AND ended_at < ?'); args.push(f.endedBefore); }
    if (f.unfinished) where.push('ended_at IS NULL');
    const sql = `SELECT * FROM recordings ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY started_at DESC, id LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, f.limit) as RecordingRow[]).map(toRecording);
  }

  getRecording(id: string): RecordingRecord | null {
    const r = this.#q.recording.get(id) as RecordingRow | undefined;
    return r ? toRecording(r) : null;
  }

  removeRecording(id: string): boolean { return this.#q.deleteRecording.run(id).changes > 0; }

  addLoginLink(secretHash: Buffer, l: Omit<LoginLinkRecord, 'usedAt'>): void {
    this.#q.insertLink.run(secretHash, l.user, l.createdAt, l.expiresAt);
  }

  redeemLoginLink(secretHash: Buffer, now: number): { user: string } | { refused: LoginLinkRefusal; user: string | null } {
    return this.#db.transaction(() => {
      const l = this.#q.link.get(secretHash) as { user_name: string; expires_at: number; used_at: number | null } | undefined;
      if (!l) return { refused: 'unknown' as const, user: null };
      if (l.used_at !== null) return { refused: 'used' as const, user: l.user_name };
      if (l.expires_at <= now) return { refused: 'expired' as const, user: l.user_name };
      this.#q.useLink.run(now, secretHash);
      return { user: l.user_name };
    }).immediate();
  }

  addWebSession(secretHash: Buffer, w: WebSessionRecord): void {
    this.#q.insertWebSession.run({ secretHash, ...w });
  }

  getWebSession(secretHash: Buffer): WebSessionRecord | null {
    const r = this.#q.webSession.get(secretHash) as WebSessionRow | undefined;
    return r ? toWebSession(r) : null;
  }

  removeWebSession(id: string): boolean { return this.#q.deleteWebSession.run(id).changes > 0; }

  expireWebAuth(now: number, keepLinksMs: number): WebSessionRecord[] {
    return this.#db.transaction(() => {
      this.#q.deleteOldLinks.run(now - keepLinksMs);
      return (this.#q.expiredWebSessions.all(now) as WebSessionRow[]).map(toWebSession);
    })();
  }

  audit(e: AuditEntry): AuditRecord {
    // IMMEDIATE, so that two processes appending at once each chain to the row the other wrote.
    return this.#db.transaction(() => {
      const last = this.#q.lastAudit.get() as { id: number; hash: string | null } | undefined;
      // Chain to the last row actually there; a row deleted behind the store's back then
      // still shows as a gap in the ids.
      const prevHash = last?.hash ?? GENESIS_HASH;
      const row = { at: e.at, actor: e.actor, action: e.action, target: e.target, detailText: JSON.stringify(e.detail), source: e.source ?? 'relay', prevHash };
      const id = Number(this.#q.insertAudit.run(row.at, row.actor, row.action, row.target, row.detailText, row.source, prevHash).lastInsertRowid);
      const hash = auditRowHash({ id, ...row });
      this.#q.setAuditHash.run(hash, id);
      this.#q.setMeta.run(AUDIT_HEAD, JSON.stringify({ id, hash } satisfies ChainHead));
      return { id, at: row.at, actor: row.actor, action: row.action, target: row.target, detail: e.detail, source: row.source, prevHash, hash };
    }).immediate();
  }

  listAudit(f: AuditFilter): AuditRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.since !== undefined) { where.push('at >= ?'); args.push(f.since); }
    if (f.until !== undefined) { where.push('at < ?'); args.push(f.until); }
    if (f.device !== undefined) { where.push('target = ?'); args.push(f.device); }
    if (f.user !== undefined) { where.push('actor = ?'); args.push(f.user); }
    if (f.beforeId !== undefined) { where.push('id < ?'); args.push(f.beforeId); }
    if (f.action !== undefined) {
      if (f.action.endsWith('.*')) {
        // A range rather than LIKE, whose '_' and '%' would need escaping: every string that
        // starts with 'reach.' sorts from 'reach.' up to, not including, 'reach/'.
        const prefix = f.action.slice(0, -1);
        where.push('action >= ? AND action < ?');
        args.push(prefix, prefix.slice(0, -1) + '/');
      } else {
        where.push('action = ?');
        args.push(f.action);
      }
    }
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, f.limit) as AuditRow[]).reverse().map(toAudit);
  }

  *iterateAudit(): IterableIterator<AuditRecord> {
    for (const r of this.#auditRows()) yield toAudit(r);
  }

  // In batches by id rather than one open query: the connection stays free for other calls
  // (an export may audit itself while it streams), and no read transaction is held open for
  // as long as a slow reader takes, which would stop the WAL from being checkpointed.
  *#auditRows(): IterableIterator<AuditRow> {
    let after = 0;
    for (;;) {
      const rows = this.#q.auditBatch.all(after, AUDIT_BATCH) as AuditRow[];
      yield* rows;
      if (rows.length < AUDIT_BATCH) return;
      after = rows.at(-1)!.id;
    }
  }

  verifyAudit(): AuditVerdict {
    // One read transaction: the head and the rows as of the same moment, even while the
    // relay keeps writing.
    return this.#db.transaction((): AuditVerdict => {
      const text = this.#q.getMeta.get(AUDIT_HEAD) as string | undefined;
      const head = text === undefined ? null : parseHead(text);
      if (head === 'unreadable') {
        return { ok: false, rows: 0, badId: 0, problem: `the chain head (meta '${AUDIT_HEAD}') is not an id and a hash: it was changed around the store` };
      }
      const rows = function* (source: Iterable<AuditRow>) { for (const r of source) yield chainRow(r); };
      return verifyChain(rows(this.#auditRows()), head);
    })();
  }
}

function parseHead(text: string): ChainHead | 'unreadable' {
  try {
    const h = JSON.parse(text) as Partial<ChainHead>;
    return Number.isSafeInteger(h.id) && typeof h.hash === 'string' ? { id: h.id!, hash: h.hash } : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function roleParams(role: RoleSpec, now: number) {
  return { name: role.name, devices: JSON.stringify(role.devices), logins: JSON.stringify(role.logins), forwards: JSON.stringify(role.forwards), actions: JSON.stringify(role.actions), now };
}
