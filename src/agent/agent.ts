/** The agent component: enrolls once, then keeps its link to the relay up until stopped. */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { systemClock, type Clock } from '../common/clock.ts';
import { FerryError, isFerryError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { isUnreachable } from '../net/dialer.ts';
import { patchSsh2 } from '../net/ssh2-internals.ts';
import { formatRelayEndpoint, parseRelayEndpoints, type RelayEndpoint } from '../protocol/relay-endpoint.ts';
import { LIMITS } from '../protocol/limits.ts';
import { AGENT_LOGIN, ENROLL_LOGIN, deviceNameFromHostname } from '../protocol/names.ts';
import { decodeToken } from '../protocol/token.ts';
import type { AgentConfig, SshTarget } from './config.ts';
import { EmbeddedServer } from './embedded/server.ts';
import { describeTarget, embeddedTarget, tcpTarget } from './targets.ts';
import { requestEnrollment } from './enroll.ts';
import { openLink, type OpenLink } from './link.ts';
import { runLinkLoop, type LinkLoopOptions } from './link-loop.ts';
import { endpointEntries, endpointListDialer, type EndpointListDialer } from './endpoints.ts';
import { connectToRelay } from './relay-connection.ts';
import { ReportQueue } from './report-queue.ts';
import { openStateDir, readEnrollment, writeEnrollment, type Enrollment } from './state.ts';
import type { KeyPair } from '../common/ssh-keys.ts';

/** Where inbound channels go when nothing else is said: the built-in SSH server. */
export const DEFAULT_SSH_TARGET: SshTarget = 'embedded';

/**
 * A running agent. Emits 'up' when a link is registered, 'down' (reason) when it ends, and
 * 'revoked' (the FerryError) when the relay starts refusing this device's key.
 */
export interface Agent extends EventEmitter {
  readonly enrollment: Enrollment;
  /** The relay endpoints this run tries (--relay, else the saved ones), in order. */
  readonly endpoints: readonly string[];
  readonly online: boolean;
  /** Resolves with the relay's refusal when the agent stopped on it (config.exitOnRevoked). */
  readonly stoppedOnRevoked: Promise<FerryError>;
  /** Resolves when the next link is up (at once when one is up now). */
  waitUntilUp(): Promise<void>;
  /** Says goodbye to the relay and stops retrying. */
  stop(): Promise<void>;
}

/** Errors after which retrying cannot help. */
const FATAL = ['FERRY_HOSTKEY_MISMATCH', 'FERRY_TLS_PIN_MISMATCH', 'FERRY_TOKEN_REFUSED', 'FERRY_CONFLICT', 'FERRY_TOKEN_INVALID'] as const;

/** Reads an endpoint list (--relay, the token's, agent.json's), or throws a config problem naming `source`. */
function endpointList(text: string, source: string): RelayEndpoint[] {
  const parsed = parseRelayEndpoints(text);
  if ('problem' in parsed) throw new FerryError('FERRY_CONFIG_INVALID', `${source}: ${parsed.problem}`);
  return parsed;
}

/** The dialer over `endpoints`, staggered and sticky (endpoints.ts). */
function relayDialer(config: Readonly<AgentConfig>, log: Logger, endpoints: RelayEndpoint[], tlsPin: string | null, lastGood: string | undefined, onGood?: (key: string) => void): EndpointListDialer {
  const entries = endpointEntries(endpoints, { tlsPin, proxies: config.proxies, keepaliveMs: config.keepaliveIntervalMs, onProxyProblem: (problem) => log.warn(problem) });
  return endpointListDialer(entries, { lastGood, onGood });
}

async function enroll(config: Readonly<AgentConfig>, key: KeyPair, hostKey: KeyPair, log: Logger, clock: Clock, signal: AbortSignal): Promise<Enrollment> {
  if (config.token === null) {
    throw new FerryError('FERRY_CONFIG_INVALID', `${config.stateDir} holds no enrollment yet: the first run needs --token (from 'token create' on the relay)`);
  }
  const decoded = decodeToken(config.token);
  if ('problem' in decoded) throw new FerryError('FERRY_TOKEN_INVALID', decoded.problem);
  const claims = decoded.claims;
  const parsed = config.relay !== null ? endpointList(config.relay, '--relay') : endpointList(claims.endpoints.join(','), 'the token');
  const endpoints = parsed.map(formatRelayEndpoint);
  const dialer = relayDialer(config, log, parsed, claims.tlsPin, undefined);
  let result: Enrollment | null = null;
  let fatal: unknown = null;
  const stop = new AbortController();
  signal.addEventListener('abort', () => stop.abort(), { once: true });
  await runLinkLoop({
    clock, signal: stop.signal, backoff: { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs }, resetAfterMs: Infinity,
    attempt: async () => {
      const client = await connectToRelay({ dialer, fingerprint: claims.fingerprint, key, username: ENROLL_LOGIN, keepaliveIntervalMs: config.keepaliveIntervalMs, keepaliveCountMax: config.keepaliveCountMax, connectTimeoutMs: config.connectTimeoutMs });
      try {
        const answer = await requestEnrollment(client, { tokenId: claims.id, secret: claims.secret, name: config.name, hostname: deviceNameFromHostname(hostname()), hostKey: hostKey.publicKey.line });
        result = { endpoints, tlsPin: claims.tlsPin, ...(dialer.lastGood ? { lastGood: dialer.lastGood } : {}), fingerprint: claims.fingerprint, name: answer.name, sshTarget: config.sshTarget ?? DEFAULT_SSH_TARGET };
        writeEnrollment(config.stateDir, result);
        log.info({ device: answer.name, status: answer.status, relay: dialer.label }, answer.status === 'approved' ? 'enrolled' : "enrolled; waiting for an admin to run 'device approve'");
      } finally {
        client.end();
      }
      stop.abort();
      return { closed: Promise.resolve('enrolled') };
    },
    onFailure: (err) => {
      if (isFerryError(err) && (FATAL as readonly string[]).includes(err.code)) {
        fatal = err;
        stop.abort();
      } else {
        log.warn({ err: (err as Error).message }, 'enrollment attempt failed; retrying');
      }
    },
  });
  if (fatal) throw fatal;
  if (!result) throw new FerryError('FERRY_CONNECT_FAILED', 'stopped before enrollment finished');
  return result;
}

/**
 * The fast phase after a healthy link drops (see link-loop.ts): it lasts while the relay is
 * unreachable (restarting, or the network is down), never waits longer than the backoff
 * ceiling, and ends at the first sign of a relay that is there but busy.
 */
export function fastRetryFor(config: Pick<AgentConfig, 'backoffMaxMs'>): LinkLoopOptions['fastRetry'] {
  return { forMs: LIMITS.fastRetryForMs, maxMs: Math.min(LIMITS.fastRetryMaxMs, config.backoffMaxMs), keepsFast: isUnreachable };
}

/** True for the relay refusing this device's key: retrying soon cannot help. */
function isRevoked(err: unknown): err is FerryError {
  return isFerryError(err, 'FERRY_AUTH_REFUSED');
}

/** A duration in hours (or minutes, or seconds) for a log message. */
function formatHours(ms: number): string {
  if (ms >= 3_600_000) return `${+(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${+(ms / 1000).toFixed(1)} s`;
}

/** Starts the agent: enrolls when needed (throwing on a final refusal), then runs the link loop. */
export async function startAgent(config: Readonly<AgentConfig>, deps: { log: Logger; clock?: Clock }): Promise<Agent> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log;
  patchSsh2();
  const { key, hostKey } = openStateDir(config.stateDir);
  const lifetime = new AbortController();
  let enrollment = readEnrollment(config.stateDir);
  if (enrollment === null) {
    enrollment = await enroll(config, key, hostKey, log, clock, lifetime.signal);
  } else {
    if (config.token !== null) log.warn({ device: enrollment.name }, `already enrolled as '${enrollment.name}'; --token is ignored`);
    if (config.sshTarget !== null && describeTarget(config.sshTarget) !== describeTarget(enrollment.sshTarget)) {
      enrollment = { ...enrollment, sshTarget: config.sshTarget };
      writeEnrollment(config.stateDir, enrollment);
    }
  }
  const e = enrollment;
  // --relay overrides the saved list for this run; the endpoint that connects is remembered
  // (agent.json's lastGood) only for the saved list, which it belongs to.
  const overridden = config.relay !== null;
  const parsed = overridden ? endpointList(config.relay!, '--relay') : endpointList(e.endpoints.join(','), 'agent.json');
  const endpoints = parsed.map(formatRelayEndpoint);
  const relay = relayDialer(config, log, parsed, e.tlsPin, overridden ? undefined : e.lastGood, overridden ? undefined : (key) => {
    e.lastGood = key;
    writeEnrollment(config.stateDir, e);
  });
  const events = new EventEmitter();
  // Tells this run from another machine with a copy of the same state dir (see relay-connection.ts).
  const instanceId = randomBytes(8).toString('hex');
  let current: OpenLink | null = null;
  // What the built-in server reports outlives each link: it waits here for the next one.
  const reports = new ReportQueue(LIMITS.maxQueuedReports);
  const embedded = e.sshTarget === 'embedded'
    ? new EmbeddedServer({ hostKey: hostKey.privateKey, forwardRules: config.forwardRules, log: log.child({ part: 'ssh-server' }), report: (r) => reports.push(r) })
    : null;
  // The relay's host key, once a link has verified it against the pinned fingerprint, is the
  // key the built-in server accepts for console sessions; the state dir keeps it (agent.json).
  const relayKeyVerified = (line: string) => {
    embedded?.setRelayKey(line);
    if (e.relayHostKey === line) return;
    e.relayHostKey = line;
    writeEnrollment(config.stateDir, e);
  };
  if (e.relayHostKey) embedded?.setRelayKey(e.relayHostKey);
  const target = e.sshTarget === 'embedded' ? embeddedTarget(embedded!) : tcpTarget(e.sshTarget, config.targetConnectTimeoutMs);

  // The relay refuses the key of a device that was revoked or removed (and only then: the
  // device login accepts every enrolled key that is not revoked). Say so once, not at every
  // attempt, until a link comes up again.
  let revoked = false;
  let onStoppedOnRevoked!: (err: FerryError) => void;
  const stoppedOnRevoked = new Promise<FerryError>((resolve) => { onStoppedOnRevoked = resolve; });
  const loop = runLinkLoop({
    clock, signal: lifetime.signal,
    backoff: { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs },
    resetAfterMs: config.backoffResetAfterMs,
    fastRetry: fastRetryFor(config),
    longRetry: { when: isRevoked, delayMs: config.revokedRetryMs },
    attempt: async () => {
      const client = await connectToRelay({ dialer: relay, fingerprint: e.fingerprint, key, username: AGENT_LOGIN, keepaliveIntervalMs: config.keepaliveIntervalMs, keepaliveCountMax: config.keepaliveCountMax, connectTimeoutMs: config.connectTimeoutMs, instanceId, onVerifiedHostKey: relayKeyVerified });
      const link = await openLink(client, e.name, target, log, embedded ? (keys) => embedded.setAuthorizedKeys(keys) : undefined, embedded ? reports : undefined);
      current = link;
      if (lifetime.signal.aborted) await link.close();
      return link;
    },
    onUp: () => {
      revoked = false;
      log.info({ device: e.name, relay: relay.label }, 'link up');
      events.emit('up');
    },
    onDown: (reason, upForMs) => {
      current = null;
      log.info({ reason, upForMs }, 'link down');
      events.emit('down', reason);
    },
    onFailure: (err, attempt) => {
      if (isRevoked(err)) {
        if (config.exitOnRevoked) {
          lifetime.abort();
          onStoppedOnRevoked(err);
        } else if (!revoked) {
          log.warn({ device: e.name, err: err.message, retryEveryMs: config.revokedRetryMs },
            `the relay refuses this device: it was revoked or removed. Retrying every ${formatHours(config.revokedRetryMs / 2)} to ${formatHours(config.revokedRetryMs)} in case it is let in again; to enrol anew, stop the agent, empty ${config.stateDir} and start it with a new token`);
        } else {
          log.debug({ err: err.message }, 'the relay still refuses this device');
        }
        if (!revoked) events.emit('revoked', err);
        revoked = true;
        return;
      }
      log[isFerryError(err, 'FERRY_HOSTKEY_MISMATCH') || isFerryError(err, 'FERRY_TLS_PIN_MISMATCH') ? 'error' : 'warn']({ err: (err as Error).message, attempt }, 'cannot reach the relay');
    },
    onWait: (delayMs) => log.debug({ delayMs }, 'waiting before the next attempt'),
  });

  // defineProperty, not Object.assign: assign would copy the getter's value once instead of the getter.
  Object.defineProperty(events, 'online', { get: () => current !== null, enumerable: true });
  return Object.assign(events as EventEmitter & { readonly online: boolean }, {
    enrollment: e,
    endpoints,
    stoppedOnRevoked,
    waitUntilUp: () => (current !== null ? Promise.resolve() : new Promise<void>((resolve) => events.once('up', () => resolve()))),
    async stop() {
      lifetime.abort();
      const link = current as OpenLink | null;
      if (link) await link.close();
      await loop;
    },
  });
}
