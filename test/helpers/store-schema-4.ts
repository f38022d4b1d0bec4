// The store's schema as ferry wrote it before roles (migrations 1 to 4, copied from
// src/relay/sqlite-store.ts at the commit before migration 5), so that migration tests start
// from a file an older relay really left behind.
import Database from 'better-sqlite3';

/** Migrations 1 to 4, as they were. */
export const OLD_MIGRATIONS: readonly string[] = [
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

/** Creates `file` as a store of schema `version` (at most 4), the way that relay would have. */
export function writeOldStore(file: string, version: number): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  for (let v = 0; v < version; v++) db.exec(OLD_MIGRATIONS[v]!);
  db.pragma(`user_version = ${version}`);
  return db;
}
