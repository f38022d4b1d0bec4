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
import { startHttpListener, type HttpListener } from './http/http-listener.ts';
import type { RelaySources } from './http/sources.ts';
import { parseHostPort } from '../protocol/host-port.ts';
import { agentEndpointOf, formatRelayEndpoint, parseRelayEndpoints } from '../protocol/relay-endpoint.ts';
import { patchSsh2 } from '../net/ssh2-internals.ts';
import { LIMITS } from '../protocol/limits.ts';
import { defaultAgentEndpoints } from './relay-address.ts';
import { authorizedKeysFor, mayLogin, mayReach } from './access-policy.ts';
import { openConsoleSession, type ConsoleSession, type ConsoleTerminal } from './console-session.ts';
import { ConsoleTerminals } from './console-terminal.ts';
import type { Principal } from './principal.ts';
import { closeCrashedRecordings, startRetention } from './recordings.ts';
import { Registry } from './registry.ts';
import { RelayEvents } from './relay-events.ts';
import { SessionTracker } from './sessions.ts';
import { openSqliteStore } from './sqlite-store.ts';
import type { DeviceRecord, Store, SubjectRecord } from './store.ts';

/** A running relay. */
export interface Relay {
  readonly sshAddress: { host: string; port: number };
  readonly fingerprint: string;
  /** The relay's host key as `ssh-ed25519 AAAA…`, for known_hosts lines. */
  readonly hostKeyLine: string;
  /** HOST:PORT of the SSH listener as operators and devices reach it. */
  readonly publicAddress: string;
  /** What tokens tell agents to dial, in order. */
  readonly agentEndpoints: readonly string[];
  /** The pin of the relay's self-signed TLS key that tokens carry, or null. */
  readonly tlsPin: string | null;
  readonly store: Store;
  readonly registry: Registry;
  /** Every live connection and reach (sessions.ts). */
  readonly sessions: SessionTracker;
  /** Changes the console's live views follow (relay-events.ts). */
  readonly events: RelayEvents;
  /** The HTTP(S) listener (console, /healthz, /metrics), or null with --http-listen off. */
  readonly http: HttpListener | null;
  /** Every browser terminal, live or waiting for a resume (console-terminal.ts). */
  readonly consoles: ConsoleTerminals;
  /** SSH handshakes running and connections queued for one, per lane (see admission.ts). */
  handshakes(): Record<Lane, { running: number; waiting: number }>;
  /** SSH connections open now, authenticated or not. */
  connections(): number;
  /** Opens a console session (console-session.ts): the relay's SSH session to a device's built-in server. */
  openConsoleSession(principal: Principal, device: string, login: string, terminal: ConsoleTerminal): Promise<ConsoleSession>;
  /** Bring live links in line with the store now (tests; the watcher does it on its own). */
  reconcile(): void;
  /** Closes every link (reason: relay shutdown), the SSH and HTTP listeners and the store. */
  stop(): Promise<void>;
}

/** The store file inside a data dir. */
export const storePath = (dataDir: string): string => join(dataDir, 'ferry.db');
/** The relay's host key inside a data dir. */
export const hostKeyPath = (dataDir: string): string => join(dataDir, 'ssh_host_ed25519_key');

/** What the running relay tells local commands (relay.json): where it is and how agents check it. */
export interface RelayInfo {
  publicAddress: string; fingerprint: string; hostKeyLine: string; consoleUrl: string | null;
  /** Absent in the file of a relay from before the wss:// link: then [publicAddress]. */
  agentEndpoints?: string[];
  tlsPin?: string | null;
}

/** Where the running relay writes its RelayInfo. */
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
      store.addUser('admin', ['admin'], keys.map((k) => ({ fingerprint: k.fingerprint, line: k.line })), clock.now());
      store.audit({ at: clock.now(), actor: 'relay', action: 'user.add', target: 'admin', detail: { role: 'admin', keys: keys.map((k) => k.fingerprint), bootstrap: true } });
    });
    log.info({ keys: keys.map((k) => k.fingerprint) }, 'created user admin from --admin-key');
  }
  // No link survives a restart (or a kill -9): whatever the store says is online is not, and
  // was last seen when the relay last noted that it was running.
  const stale = store.markAllOffline(store.lastHeartbeat() ?? clock.now(), 'relay restarted');
  if (stale > 0) log.info({ devices: stale }, 'marked devices offline after a restart');
  // Likewise no recording survives a restart: each left open is closed as the disk has it.
  const cut = closeCrashedRecordings({ store, dataDir: config.dataDir, now: clock.now() });
  if (cut > 0) log.warn({ recordings: cut }, 'closed recordings cut by a relay crash: each is readable up to its last flush');

  const registry = new Registry(clock);
  const keyWatchers: RelayContext['keyWatchers'] = new Map();
  const events = new RelayEvents();
  const sessions = new SessionTracker({ clock, limits: config, audit: (e) => store.audit(e), onReach: (reach, end) => events.emit({ type: 'session', reach, end }) });
  const reconcile = (only?: string) => {
    // One read of who may do what; then every live session is held against it, and every
    // live device gets its current key list (a watcher skips what it sent already).
    const subjects = new Map(store.listSubjects().map((u) => [u.name, u]));
    const devices = new Map<string, DeviceRecord | null>();
    const deviceOf = (name: string) => {
      if (!devices.has(name)) devices.set(name, store.getDevice(name));
      return devices.get(name)!;
    };
    const gone = (p: Principal) => {
      if (p.kind === 'local') return null;
      const user = subjects.get(p.user);
      if (!user) return `user '${p.user}' was removed`;
      if (p.kind === 'ssh' && !user.keys.some((k) => k.fingerprint === p.keyFingerprint)) return `key ${p.keyFingerprint} of '${p.user}' was removed`;
      // A console session stands for the user's keys as a whole: it ends with the last of them.
      if (p.kind === 'web' && user.keys.length === 0) return `'${p.user}' has no key left`;
      return null;
    };
    // Reaches first, so that each ends with the rule that ended it, not as a lost link.
    sessions.endReaches((r) => {
      const why = gone(r.principal) ?? reachRevoked(subjects.get(r.user)!, deviceOf(r.device), r.login);
      return why === null ? null : `access revoked: ${why}`;
    });
    sessions.endConnections(gone);
    // The console's live views: one device to read again, or (users, roles, another process) all of them.
    events.emit(only === undefined ? { type: 'devices' } : { type: 'device', name: only });
    for (const name of only === undefined ? new Set([...registry.links()].map((l) => l.device)) : [only]) {
      const d = deviceOf(name);
      const link = registry.get(name);
      if (link && d === null) link.close('removed');
      else if (link && d?.status === 'revoked') link.close('revoked');
      keyWatchers.get(name)?.(authorizedKeysFor(d, [...subjects.values()]));
    }
  };
  const ctx: { -readonly [K in keyof RelayContext]: RelayContext[K] } = {
    config, store, registry, log, clock, fingerprint: hostKey.publicKey.fingerprint, hostKeyLine: hostKey.publicKey.line, hostPrivateKey: hostKey.privateKey, reconcile, sessions, keyWatchers, publicAddress: '', agentEndpoints: [], tlsPin: null,
    channelStats: { opened: 0, failed: 0 }, consoleUrl: null, events,
    consoles: null as unknown as ConsoleTerminals,
  };
  // The terminals open console sessions through the context, so they come after it.
  ctx.consoles = new ConsoleTerminals(ctx);
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
  let http: HttpListener | null = null;
  if (config.httpListen !== null) {
    const sources: RelaySources = {
      startedAt: clock.now(), now: () => clock.now(),
      devicesOnline: () => registry.size, sshConnections: () => door.connections, handshakes: () => door.handshakes(),
      channelStats: ctx.channelStats, sessions, consoles: ctx.consoles,
      storeProblem: () => {
        try {
          store.countUsers();
          return null;
        } catch (err) {
          return (err as Error).message;
        }
      },
    };
    try {
      http = await startHttpListener({ config: { ...config, httpListen: config.httpListen }, publicHost: parseHostPort(ctx.publicAddress)?.host ?? host, sources, ctx, door, log });
      ctx.consoleUrl = http.url;
    } catch (err) {
      await door.close(0);
      store.close();
      throw err;
    }
  }
  const endpoints = parseRelayEndpoints((config.agentEndpoints ?? defaultAgentEndpoints(ctx.publicAddress, ctx.consoleUrl)).join(','));
  if ('problem' in endpoints) {
    // The config checked --agent-endpoints; the defaults come from --public-address and the URL.
    await Promise.all([door.close(0), http?.close()]);
    store.close();
    throw new FerryError('FERRY_CONFIG_INVALID', `agents could not dial what tokens would tell them: ${endpoints.problem}; set --public-address (and --public-url), or --agent-endpoints`);
  }
  // Written back as the parser reads them (wss:// with its full path).
  ctx.agentEndpoints = endpoints.map(formatRelayEndpoint);
  // The pin is of this relay's own certificate: it goes with its own wss:// endpoint only, not
  // with one that a load balancer (its own certificate) answers.
  const own = ctx.consoleUrl === null ? null : agentEndpointOf(ctx.consoleUrl);
  ctx.tlsPin = own !== null && ctx.agentEndpoints.includes(formatRelayEndpoint(own)) ? http?.selfSignedPin ?? null : null;
  log.info({ endpoints: ctx.agentEndpoints, tlsPin: ctx.tlsPin }, 'tokens send agents to these endpoints');
  // The local CLI (`ferry token create --data-dir`) reads this to write tokens that point here.
  const info: RelayInfo = { publicAddress: ctx.publicAddress, fingerprint: ctx.fingerprint, hostKeyLine: ctx.hostKeyLine, consoleUrl: ctx.consoleUrl, agentEndpoints: [...ctx.agentEndpoints], tlsPin: ctx.tlsPin };
  writeFileSync(relayInfoPath(config.dataDir), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });

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
  const retention = startRetention({ store, dataDir: config.dataDir, clock, retentionMs: config.recordingRetentionMs, sweepMs: LIMITS.recordingRetentionSweepMs, log });

  let stopped = false;
  return {
    sshAddress, fingerprint: ctx.fingerprint, hostKeyLine: hostKey.publicKey.line, publicAddress: ctx.publicAddress, agentEndpoints: ctx.agentEndpoints, tlsPin: ctx.tlsPin, store, registry, sessions, http, consoles: ctx.consoles, events,
    reconcile: () => reconcile(),
    openConsoleSession: (principal, device, login, terminal) => openConsoleSession(ctx, principal, device, login, terminal),
    handshakes: () => door.handshakes(),
    connections: () => door.connections,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(watcher);
      clearInterval(heartbeat);
      retention.stop();
      const closing = Promise.all([door.close(1_000), http?.close()]);
      const now = clock.now();
      // Sessions first: their rows say 'relay shutdown', not 'link lost'.
      sessions.shutdown();
      // Their recordings' last rows go in before the store closes, if they come in time.
      let waited: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        ctx.consoles.closed().then(() => false),
        new Promise<boolean>((resolve) => { waited = setTimeout(() => resolve(true), LIMITS.shutdownRecordingWaitMs); }),
      ]);
      clearTimeout(waited);
      if (late) log.warn({ waitedMs: LIMITS.shutdownRecordingWaitMs }, 'stopping without the last rows of some terminal recordings: their sessions did not end in time');
      for (const link of [...registry.links()]) {
        registry.unregister(link);
        store.markOffline(link.device, now, 'relay shutdown');
        link.close('relay shutdown');
      }
      await closing;
      store.close();
      lock.release();
    },
  };
}

/**
 * Why `subject` may no longer reach `device` (removed, revoked, or no role covers it now), or
 * as `login` when the relay knows it (a console session), or null when it still may.
 */
function reachRevoked(subject: SubjectRecord, device: DeviceRecord | null, login: string | null): string | null {
  if (device === null) return 'the device was removed';
  if (device.status !== 'approved') return `device '${device.name}' is ${device.status}`;
  const who = { user: subject.name, roles: subject.roles };
  const decision = login === null ? mayReach(who, device) : mayLogin(who, device, login);
  return decision.allow ? null : decision.message;
}
