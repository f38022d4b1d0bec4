/** The relay component: store, host key, front door, registry and the store watcher, started and stopped as one. */
import { mkdirSync, chmodSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '../common/clock.ts';
import { FerryError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { loadOrCreateKey, parsePublicKey } from '../common/ssh-keys.ts';
import type { RelayConfig } from './config.ts';
import type { RelayContext } from './context.ts';
import type { Lane } from './admission.ts';
import { lockDataDir, type DataDirLock } from './data-dir-lock.ts';
import { FrontDoor } from './front-door.ts';
import { patchSsh2 } from '../net/ssh2-internals.ts';
import { LIMITS } from '../protocol/limits.ts';
import { authorizedKeysFor } from './policy.ts';
import { Registry } from './registry.ts';
import { SessionTracker } from './sessions.ts';
import { openSqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

/** A running relay. */
export interface Relay {
  readonly sshAddress: { host: string; port: number };
  readonly fingerprint: string;
  /** The relay's host key as `ssh-ed25519 AAAA…`, for known_hosts lines. */
  readonly hostKeyLine: string;
  /** HOST:PORT that tokens tell devices to dial. */
  readonly publicAddress: string;
  readonly store: Store;
  readonly registry: Registry;
  /** Every live connection and reach (sessions.ts). */
  readonly sessions: SessionTracker;
  /** SSH handshakes running and connections queued for one, per lane (see admission.ts). */
  handshakes(): Record<Lane, { running: number; waiting: number }>;
  /** SSH connections open now, authenticated or not. */
  connections(): number;
  /** Bring live links in line with the store now (tests; the watcher does it on its own). */
  reconcile(): void;
  /** Closes every link (reason: relay shutdown), the listener and the store. */
  stop(): Promise<void>;
}

/** The store file inside a data dir. */
export const storePath = (dataDir: string): string => join(dataDir, 'ferry.db');
/** The relay's host key inside a data dir. */
export const hostKeyPath = (dataDir: string): string => join(dataDir, 'ssh_host_ed25519_key');

/** What the running relay tells local commands: its public address and fingerprint. */
export const relayInfoPath = (dataDir: string): string => join(dataDir, 'relay.json');

/** Opens the data dir (creating it at 0700) and its store. */
export function openDataDir(dataDir: string): Store {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return openSqliteStore(storePath(dataDir));
}

/**
 * Starts a relay. Throws FerryError when the config or the data dir is not usable, and
 * FERRY_CONFLICT when another relay runs on the same data dir.
 */
export async function startRelay(config: Readonly<RelayConfig>, deps: { log: Logger; clock?: Clock }): Promise<Relay> {
  // Before the store is touched: a second relay must not mark the first one's devices offline.
  const lock = lockDataDir(config.dataDir, (deps.clock ?? systemClock).now());
  try {
    return await startLocked(config, deps, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(config: Readonly<RelayConfig>, deps: { log: Logger; clock?: Clock }, lock: DataDirLock): Promise<Relay> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log;
  patchSsh2();
  const store = openDataDir(config.dataDir);
  chmodSync(config.dataDir, 0o700);
  const hostKey = loadOrCreateKey(hostKeyPath(config.dataDir), 'ferry-relay');
  if (hostKey.created) log.info({ fingerprint: hostKey.publicKey.fingerprint }, 'created the relay host key');
  // Published beside the private key, as sshd does, for known_hosts lines and ssh-keyscan-free setups.
  writeFileSync(`${hostKeyPath(config.dataDir)}.pub`, `${hostKey.publicKey.line} ferry-relay\n`, { mode: 0o644 });

  if (store.countUsers() === 0) {
    if (config.adminKeys.length === 0) {
      store.close();
      throw new FerryError('FERRY_CONFIG_INVALID', 'the relay has no users yet: start it once with --admin-key FILE (e.g. ~/.ssh/id_ed25519.pub) and those keys become user "admin"');
    }
    const keys = config.adminKeys.map((line) => parsePublicKey(line));
    store.transaction(() => {
      store.addUser('admin', 'admin', keys.map((k) => ({ fingerprint: k.fingerprint, line: k.line })), clock.now());
      store.audit({ at: clock.now(), actor: 'relay', action: 'user.add', target: 'admin', detail: { role: 'admin', keys: keys.map((k) => k.fingerprint), bootstrap: true } });
    });
    log.info({ keys: keys.map((k) => k.fingerprint) }, 'created user admin from --admin-key');
  }
  // No link survives a restart (or a kill -9): whatever the store says is online is not, and
  // was last seen when the relay last noted that it was running.
  const stale = store.markAllOffline(store.lastHeartbeat() ?? clock.now(), 'relay restarted');
  if (stale > 0) log.info({ devices: stale }, 'marked devices offline after a restart');

  const registry = new Registry(clock);
  const keyWatchers: RelayContext['keyWatchers'] = new Map();
  const sessions = new SessionTracker({ clock, limits: config, audit: (e) => store.audit(e) });
  const reconcile = (only?: string) => {
    // One store read per live device: close what was revoked or removed, and push each its
    // current operator keys (a watcher skips what it sent already).
    const users = store.listUsers();
    for (const name of only === undefined ? new Set([...registry.links()].map((l) => l.device)) : [only]) {
      const d = store.getDevice(name);
      const link = registry.get(name);
      const gone = d === null ? 'removed' : d.status === 'revoked' ? 'revoked' : null;
      if (link && gone) {
        // Said before the link goes, so that its reaches end as revoked and not as a lost link.
        sessions.endReaches((r) => (r.device === name ? `access revoked: device '${name}' was ${gone}` : null));
        link.close(gone);
      }
      keyWatchers.get(name)?.(authorizedKeysFor(d, users));
    }
    if (only === undefined) {
      sessions.endConnections((p) => {
        if (p.kind === 'local') return null;
        const user = users.find((u) => u.name === p.user);
        if (!user) return `user '${p.user}' was removed`;
        if (p.kind === 'ssh' && !user.keys.some((k) => k.fingerprint === p.keyFingerprint)) return `key ${p.keyFingerprint} of '${p.user}' was removed`;
        return null;
      });
    }
  };
  const ctx: { -readonly [K in keyof RelayContext]: RelayContext[K] } = {
    config, store, registry, log, clock, fingerprint: hostKey.publicKey.fingerprint, hostKeyLine: hostKey.publicKey.line, reconcile, sessions, keyWatchers, publicAddress: '',
  };
  const door = new FrontDoor(ctx, hostKey.privateKey);
  let sshAddress;
  try {
    sshAddress = await door.listen(config.sshListen.host, config.sshListen.port);
  } catch (err) {
    store.close();
    throw new FerryError('FERRY_CONFIG_INVALID', `cannot listen on ${config.sshListen.host}:${config.sshListen.port}: ${(err as Error).message}`, { cause: err });
  }
  const wildcard = ['0.0.0.0', '::', ''].includes(config.sshListen.host);
  const host = wildcard ? osHostname() : sshAddress.host;
  ctx.publicAddress = config.publicAddress ?? `${host.includes(':') ? `[${host}]` : host}:${sshAddress.port}`;
  // The local CLI (`ferry token create --data-dir`) reads this to write tokens that point here.
  writeFileSync(relayInfoPath(config.dataDir), JSON.stringify({ publicAddress: ctx.publicAddress, fingerprint: ctx.fingerprint, hostKeyLine: ctx.hostKeyLine }, null, 2) + '\n', { mode: 0o600 });

  // Changes made by another process (the local `ferry device revoke`) show up here.
  let seen = store.changeCounter();
  const watcher = setInterval(() => {
    const now = store.changeCounter();
    if (now !== seen) {
      seen = now;
      reconcile();
    }
  }, config.storeWatchIntervalMs);
  watcher.unref();
  store.heartbeat(clock.now());
  const heartbeat = setInterval(() => store.heartbeat(clock.now()), LIMITS.heartbeatIntervalMs);
  heartbeat.unref();

  let stopped = false;
  return {
    sshAddress, fingerprint: ctx.fingerprint, hostKeyLine: hostKey.publicKey.line, publicAddress: ctx.publicAddress, store, registry, sessions,
    reconcile: () => reconcile(),
    handshakes: () => door.handshakes(),
    connections: () => door.connections,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(watcher);
      clearInterval(heartbeat);
      const closing = door.close(1_000);
      const now = clock.now();
      for (const link of [...registry.links()]) {
        registry.unregister(link);
        store.markOffline(link.device, now, 'relay shutdown');
        link.close('relay shutdown');
      }
      sessions.shutdown();
      await closing;
      store.close();
      lock.release();
    },
  };
}
