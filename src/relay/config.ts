/** The relay's configuration: its type, defaults, and a validator that reports every problem at once. */
import { isIP } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';
import { parseRelayEndpoints } from '../protocol/relay-endpoint.ts';
import { LIMITS } from '../protocol/limits.ts';
import type { LogLevel } from '../common/log.ts';
import type { AuditRate } from './audit-rate.ts';

/** A HOST:PORT to listen on. */
export interface ListenAddress { host: string; port: number }

/** Everything the relay needs to run. The CLI builds it, validates it, freezes it. */
export interface RelayConfig {
  /** Where the store, host key and recordings live. Created at mode 0700. */
  dataDir: string;
  sshListen: ListenAddress;
  /** HOST:PORT written into enrollment tokens: how devices reach this relay. Null: this host's name and the bound port. */
  publicAddress: string | null;
  /** Where the HTTPS listener (console, API, /healthz, /metrics) listens; null: no HTTP listener (--http-listen off). */
  httpListen: ListenAddress | null;
  /** Certificate and key files (PEM) for HTTPS; both null: a self-signed pair kept in the data dir. */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  /** Plain HTTP instead of HTTPS, for a TLS reverse proxy in front; only on a loopback address. */
  httpPlain: boolean;
  /** The URL operators open (--public-url); null: http(s)://HOST:PORT from the public address's host and the bound HTTP port. */
  publicUrl: string | null;
  /**
   * Addresses (IPs or CIDR ranges) of reverse proxies in front of the HTTP listener whose
   * X-Forwarded-For the relay believes (--trusted-proxy); empty: the client is the TCP peer.
   */
  trustedProxies: string[];
  /**
   * What tokens tell agents to dial, in order (relay-endpoint.ts), --agent-endpoints. Null:
   * the public address, then the wss:// endpoint of the HTTPS listener's URL when it has one.
   */
  agentEndpoints: string[] | null;
  /** The HTTP listener's limits (LIMITS.http*). */
  httpBodyLimitBytes: number;
  httpHeadersTimeoutMs: number;
  httpRequestTimeoutMs: number;
  httpIdleTimeoutMs: number;
  httpMaxConnections: number;
  /** Public key lines that become user 'admin' when the store has no users yet. */
  adminKeys: string[];
  logLevel: LogLevel;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  loginGraceMs: number;
  maxAuthAttempts: number;
  maxConnections: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  /** SSH handshakes run at once for devices (ferry agents); the rest wait in a queue. */
  maxHandshakes: number;
  /** The same for everyone else (operators), in a lane of their own. */
  maxInteractiveHandshakes: number;
  /** Percent of the device lane's handshake slots one source address may hold; its other connections wait. */
  handshakeSharePerAddress: number;
  /** The same for the operators' lane. */
  interactiveHandshakeSharePerAddress: number;
  /** Connections that have not sent their SSH identification line yet (silent ones included). */
  maxUnidentified: number;
  /** Unauthenticated connections in the operators' lane, on top of `maxUnauthenticated` (the devices' share). */
  maxUnauthenticatedInteractive: number;
  /** Longest wait for a handshake slot before the connection is dropped. */
  handshakeQueueWaitMs: number;
  channelOpenTimeoutMs: number;
  storeWatchIntervalMs: number;
  /** Live sessions one user may hold at once (--max-sessions-per-user). */
  maxSessionsPerUser: number;
  /** Live sessions to one device at once (--max-sessions-per-device). */
  maxSessionsPerDevice: number;
  /** A session idle this long is ended; 0: never (--session-idle-timeout). */
  sessionIdleTimeoutMs: number;
  /** Recordings are deleted this long after they end; 0 keeps them forever (--recording-retention). */
  recordingRetentionMs: number;
  /** A browser terminal whose WebSocket went away without a close frame is kept this long for its user to resume (--console-resume-window). */
  consoleResumeWindowMs: number;
  /** Record a browser terminal's keystrokes too (--record-input); off by default, since they capture passwords. */
  recordInput: boolean;
  /** Output bytes a browser terminal may leave unacked before the relay stops reading the device's output (LIMITS.consoleUnackedBytes). */
  consoleUnackedBytes: number;
  /** Keystrokes a browser terminal may have waiting for the device's link before the relay refuses its socket (LIMITS.consoleInputQueueBytes). */
  consoleInputQueueBytes: number;
  /** How often the relay pings a browser terminal's WebSocket; one that missed the last ping is closed (LIMITS.consolePingIntervalMs). */
  consolePingIntervalMs: number;
  /** The most output per second the relay reads from one browser terminal's device; 0: no limit (LIMITS.consoleOutputBytesPerSecond). */
  consoleOutputBytesPerSecond: number;
  /** Refused logins audited per window before the rest are summed up in one row. */
  loginRefusalAudit: AuditRate;
  /** Device reports audited per device per window before the rest are summed up in one row. */
  deviceReportAudit: AuditRate;
  /** How long a console session (its cookie) lasts from sign-in (--console-session-ttl). */
  consoleSessionTtlMs: number;
  /** Refused console sign-ins audited per window before the rest are summed up in one row. */
  webLoginRefusalAudit: AuditRate;
}

/** Defaults for everything but the data dir and the keys. */
export const RELAY_DEFAULTS = Object.freeze({
  sshListen: { host: '0.0.0.0', port: 2222 },
  httpListen: Object.freeze({ host: '0.0.0.0', port: 8443 }) as ListenAddress | null,
  tlsCertFile: null as string | null,
  tlsKeyFile: null as string | null,
  httpPlain: false,
  publicUrl: null as string | null,
  trustedProxies: Object.freeze([]) as readonly string[] as string[],
  agentEndpoints: null as string[] | null,
  httpBodyLimitBytes: LIMITS.httpBodyLimitBytes,
  httpHeadersTimeoutMs: LIMITS.httpHeadersTimeoutMs,
  httpRequestTimeoutMs: LIMITS.httpRequestTimeoutMs,
  httpIdleTimeoutMs: LIMITS.httpIdleTimeoutMs,
  httpMaxConnections: LIMITS.httpMaxConnections,
  logLevel: 'info' as LogLevel,
  keepaliveIntervalMs: LIMITS.keepaliveIntervalMs,
  keepaliveCountMax: LIMITS.keepaliveCountMax,
  loginGraceMs: LIMITS.loginGraceMs,
  maxAuthAttempts: LIMITS.maxAuthAttempts,
  maxConnections: LIMITS.maxConnections,
  maxUnauthenticated: LIMITS.maxUnauthenticated,
  maxUnauthenticatedPerAddress: LIMITS.maxUnauthenticatedPerAddress,
  maxHandshakes: LIMITS.maxHandshakes,
  maxInteractiveHandshakes: LIMITS.maxInteractiveHandshakes,
  handshakeSharePerAddress: LIMITS.handshakeSharePerAddress,
  interactiveHandshakeSharePerAddress: LIMITS.interactiveHandshakeSharePerAddress,
  maxUnidentified: LIMITS.maxUnidentified,
  maxUnauthenticatedInteractive: LIMITS.maxUnauthenticatedInteractive,
  handshakeQueueWaitMs: LIMITS.handshakeQueueWaitMs,
  channelOpenTimeoutMs: LIMITS.channelOpenTimeoutMs,
  storeWatchIntervalMs: LIMITS.storeWatchIntervalMs,
  maxSessionsPerUser: LIMITS.maxSessionsPerUser,
  maxSessionsPerDevice: LIMITS.maxSessionsPerDevice,
  sessionIdleTimeoutMs: LIMITS.sessionIdleTimeoutMs,
  recordingRetentionMs: LIMITS.recordingRetentionMs,
  consoleResumeWindowMs: LIMITS.consoleResumeWindowMs,
  recordInput: false,
  consoleUnackedBytes: LIMITS.consoleUnackedBytes,
  consoleInputQueueBytes: LIMITS.consoleInputQueueBytes,
  consolePingIntervalMs: LIMITS.consolePingIntervalMs,
  consoleOutputBytesPerSecond: LIMITS.consoleOutputBytesPerSecond,
  loginRefusalAudit: Object.freeze({ perWindow: LIMITS.loginRefusalAuditPerWindow, windowMs: LIMITS.auditRateWindowMs }),
  deviceReportAudit: Object.freeze({ perWindow: LIMITS.deviceReportAuditPerWindow, windowMs: LIMITS.auditRateWindowMs }),
  consoleSessionTtlMs: LIMITS.consoleSessionTtlMs,
  webLoginRefusalAudit: Object.freeze({ perWindow: LIMITS.webLoginRefusalAuditPerWindow, windowMs: LIMITS.auditRateWindowMs }),
});

/** Every problem with `c`, in words a user can act on; empty when it is fine. */
export function relayConfigProblems(c: RelayConfig): string[] {
  const problems: string[] = [];
  if (!c.dataDir) problems.push('--data-dir is required: the directory where the relay keeps its store and host key');
  if (!Number.isInteger(c.sshListen.port) || c.sshListen.port < 0 || c.sshListen.port > 65535) problems.push(`--ssh-listen port ${c.sshListen.port} is not a port number`);
  if (c.publicAddress !== null && !/^[^\s]+:\d{1,5}$/.test(c.publicAddress)) problems.push(`--public-address '${c.publicAddress}' must be HOST:PORT, the address devices dial`);
  const positive: [keyof RelayConfig, number][] = [
    ['keepaliveIntervalMs', 1000], ['loginGraceMs', 1000], ['maxAuthAttempts', 1], ['maxConnections', 1],
    ['maxUnauthenticated', 1], ['maxUnauthenticatedPerAddress', 1],
    ['maxHandshakes', 1], ['maxInteractiveHandshakes', 1], ['maxUnauthenticatedInteractive', 1], ['maxUnidentified', 1], ['handshakeQueueWaitMs', 100], ['channelOpenTimeoutMs', 100], ['storeWatchIntervalMs', 10],
    ['maxSessionsPerUser', 1], ['maxSessionsPerDevice', 1], ['sessionIdleTimeoutMs', 0],
    ['consoleResumeWindowMs', 0], ['consolePingIntervalMs', 100], ['consoleOutputBytesPerSecond', 0],
    ['httpBodyLimitBytes', 1024], ['httpHeadersTimeoutMs', 1000], ['httpRequestTimeoutMs', 1000], ['httpIdleTimeoutMs', 100], ['httpMaxConnections', 1],
  ];
  for (const [key, min] of positive) {
    const v = c[key] as number;
    if (!Number.isFinite(v) || v < min) problems.push(`${key} must be a number of at least ${min}, not ${v}`);
  }
  for (const key of ['handshakeSharePerAddress', 'interactiveHandshakeSharePerAddress'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1 || c[key] > 100) problems.push(`${key} must be a whole percentage from 1 to 100, not ${c[key]}`);
  }
  for (const key of ['loginRefusalAudit', 'deviceReportAudit', 'webLoginRefusalAudit'] as const) {
    const r = c[key];
    if (!Number.isInteger(r.perWindow) || r.perWindow < 1 || !Number.isFinite(r.windowMs) || r.windowMs < 1000) problems.push(`${key} must allow at least 1 row per window of at least 1000 ms`);
  }
  if (c.sessionIdleTimeoutMs > 0 && c.sessionIdleTimeoutMs < 1000) problems.push(`--session-idle-timeout must be 0 (off) or at least 1s, not ${c.sessionIdleTimeoutMs} ms`);
  if (!Number.isFinite(c.recordingRetentionMs) || c.recordingRetentionMs < 0 || (c.recordingRetentionMs > 0 && c.recordingRetentionMs < 60 * 60 * 1000)) {
    problems.push(`--recording-retention must be 0 (keep forever) or at least 1h, not ${c.recordingRetentionMs} ms`);
  }
  // At least two frames' worth, so that the browser's acks (every consoleAckEveryBytes) always let output through.
  if (!Number.isInteger(c.consoleInputQueueBytes) || c.consoleInputQueueBytes < LIMITS.maxTerminalFrameBytes) {
    problems.push(`consoleInputQueueBytes must be a whole number of at least ${LIMITS.maxTerminalFrameBytes} (one frame), not ${c.consoleInputQueueBytes}`);
  }
  if (!Number.isInteger(c.consoleUnackedBytes) || c.consoleUnackedBytes < 2 * LIMITS.consoleAckEveryBytes) {
    problems.push(`consoleUnackedBytes must be a whole number of at least ${2 * LIMITS.consoleAckEveryBytes}, not ${c.consoleUnackedBytes}`);
  }
  if (!Number.isInteger(c.keepaliveCountMax) || c.keepaliveCountMax < 1) problems.push('keepaliveCountMax must be a whole number of at least 1');
  if (c.agentEndpoints !== null) {
    const parsed = parseRelayEndpoints(c.agentEndpoints.join(','));
    if ('problem' in parsed) problems.push(`--agent-endpoints: ${parsed.problem}`);
  }
  problems.push(...httpConfigProblems(c));
  return problems;
}

/** The problems with the HTTP listener's settings alone (part of relayConfigProblems). */
function httpConfigProblems(c: RelayConfig): string[] {
  const problems: string[] = [];
  if ((c.tlsCertFile === null) !== (c.tlsKeyFile === null)) problems.push('--tls-cert and --tls-key go together: give both (your certificate and its key, PEM) or neither (the relay makes a self-signed pair)');
  if (!Number.isFinite(c.consoleSessionTtlMs) || c.consoleSessionTtlMs < 60_000 || c.consoleSessionTtlMs > LIMITS.consoleSessionMaxTtlMs) {
    problems.push(`--console-session-ttl must be from 1m to ${LIMITS.consoleSessionMaxTtlMs / 86_400_000}d, not ${c.consoleSessionTtlMs} ms`);
  }
  if (c.httpHeadersTimeoutMs > c.httpRequestTimeoutMs) problems.push(`httpHeadersTimeoutMs (${c.httpHeadersTimeoutMs}) must not be longer than httpRequestTimeoutMs (${c.httpRequestTimeoutMs}): the headers are part of the request`);
  if (c.httpListen === null) return problems;
  if (!Number.isInteger(c.httpListen.port) || c.httpListen.port < 0 || c.httpListen.port > 65535) problems.push(`--http-listen port ${c.httpListen.port} is not a port number`);
  if (c.httpPlain && c.tlsCertFile !== null) problems.push('--http-plain serves plain HTTP, so --tls-cert and --tls-key would not be used: drop one or the other');
  if (c.httpPlain && !isLoopback(c.httpListen.host)) {
    problems.push(`--http-plain is refused on ${c.httpListen.host}: plain HTTP would carry sign-in links and session cookies in the clear. Listen on loopback (--http-listen 127.0.0.1:8080) behind a TLS reverse proxy, or drop --http-plain`);
  }
  if (c.publicUrl !== null && publicUrlProblem(c.publicUrl) !== null) problems.push(publicUrlProblem(c.publicUrl)!);
  for (const proxy of c.trustedProxies) {
    try {
      proxyAddr.compile(proxy);
    } catch {
      problems.push(`--trusted-proxy '${proxy}' is not an IP address or a CIDR range (like 10.0.0.5 or 10.0.0.0/8)`);
    }
  }
  return problems;
}

/** True for addresses only this machine can connect to: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** What is wrong with a --public-url, or null when it is an http(s) URL with a host and no path, query or fragment. */
export function publicUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `--public-url '${url}' is not a URL: write it as https://HOST[:PORT], the address operators open`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `--public-url '${url}' must start with https:// (or http:// for a test setup)`;
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || (u.pathname !== '/' && u.pathname !== '')) {
    return `--public-url '${url}' must be only https://HOST[:PORT], with no path, user, query or fragment`;
  }
  return null;
}
