/** `ferry relay`: flags → RelayConfig → a running relay until SIGTERM or SIGINT. */
import { readFileSync } from 'node:fs';
import { FerryError } from '../common/errors.ts';
import { chooseLogFormat, createLogger, type LogFormat } from '../common/log.ts';
import { parsePublicKeys } from '../common/ssh-keys.ts';
import { RELAY_DEFAULTS, relayConfigProblems, type RelayConfig } from '../relay/config.ts';
import { startRelay, type Relay } from '../relay/relay.ts';
import { Options, type FlagSpec } from './options.ts';

export const RELAY_FLAGS: Record<string, FlagSpec> = {
  'data-dir': { type: 'string', env: 'FERRY_DATA_DIR', help: 'store, host key (required)' },
  'ssh-listen': { type: 'string', env: 'FERRY_SSH_LISTEN', help: 'SSH address to listen on (default 0.0.0.0:2222)' },
  'public-address': { type: 'string', env: 'FERRY_PUBLIC_ADDRESS', help: 'HOST:PORT devices dial, written into tokens (default: host name and bound port)' },
  'http-listen': { type: 'string', env: 'FERRY_HTTP_LISTEN', help: 'HTTPS address of the console, /healthz and /metrics; off: none (default 0.0.0.0:8443)' },
  'tls-cert': { type: 'string', env: 'FERRY_TLS_CERT', help: 'HTTPS certificate chain, PEM (with --tls-key; default: a self-signed one in the data dir)' },
  'tls-key': { type: 'string', env: 'FERRY_TLS_KEY', help: 'the private key of --tls-cert, PEM' },
  'http-plain': { type: 'boolean', help: 'serve plain HTTP, for a TLS reverse proxy in front; only on a loopback --http-listen' },
  'public-url': { type: 'string', env: 'FERRY_PUBLIC_URL', help: 'URL operators open, e.g. https://relay.example.com (default: https://HOST:PORT of the public address and HTTP port)' },
  'trusted-proxy': { type: 'string', env: 'FERRY_TRUSTED_PROXY', help: 'reverse proxy in front of the HTTP listener (IP or CIDR; several comma-separated) whose X-Forwarded-For names the client (default: none)' },
  'agent-endpoints': { type: 'string', env: 'FERRY_AGENT_ENDPOINTS', help: 'what tokens tell agents to dial, in order: HOST:PORT and wss://HOST/ comma-separated (default: the public address, then wss:// of the HTTPS URL)' },
  'console-session-ttl': { type: 'string', help: 'how long a console sign-in lasts, e.g. 8h; from 1m to 7d (default 12h)' },
  'admin-key': { type: 'string', multiple: true, help: 'public key file for user "admin" on first start (repeatable)' },
  'log-level': { type: 'string', env: 'FERRY_LOG_LEVEL', help: 'fatal, error, warn, info (default), debug, trace, silent' },
  'log-format': { type: 'string', env: 'FERRY_LOG_FORMAT', help: 'json or pretty (default: pretty when stderr is a terminal, else json)' },
  'keepalive-interval': { type: 'string', help: 'ping an idle connection this often (default 20s)' },
  'keepalive-count': { type: 'string', help: 'missed pings before a connection is dead (default 3)' },
  'login-grace': { type: 'string', help: 'time to authenticate before being dropped (default 20s)' },
  'max-auth-tries': { type: 'string', help: 'failed logins per connection before it is dropped (default 6)' },
  'max-connections': { type: 'string', help: 'connections held at once (default 150000)' },
  'max-unidentified': { type: 'string', help: 'connections that have not sent their SSH ident yet (default 16384)' },
  'max-unauthenticated': { type: 'string', help: 'agent connections not yet authenticated (default 8192)' },
  'max-unauthenticated-interactive': { type: 'string', help: 'operator connections not yet authenticated (default 512)' },
  'max-unauthenticated-per-address': { type: 'string', help: 'the same, from one source address (default 256)' },
  'max-handshakes': { type: 'string', help: 'device SSH handshakes run at once; more wait in a queue (default 256)' },
  'max-interactive-handshakes': { type: 'string', help: 'the same for operators, in their own queue (default 32)' },
  'handshake-share-per-address': { type: 'string', help: 'percent of the device handshake slots one source address may hold; its other connections wait (default 50)' },
  'interactive-handshake-share-per-address': { type: 'string', help: "the same for the operators' handshake slots (default 10)" },
  'handshake-queue-wait': { type: 'string', help: 'longest wait in that queue before being dropped (default 10s)' },
  'channel-open-timeout': { type: 'string', help: 'how long a device has to accept a channel (default 10s)' },
  'max-sessions-per-user': { type: 'string', help: 'sessions (ssh -J reaches) one user may hold at once (default 32)' },
  'max-sessions-per-device': { type: 'string', help: 'sessions to one device at once, from everyone (default 16)' },
  'session-idle-timeout': { type: 'string', help: 'end a session that moves no byte for this long, e.g. 30m; 0 or off: never (default 0)' },
  'recording-retention': { type: 'string', help: 'delete session recordings this long after they end, e.g. 90d; 0 or off: keep forever (default 0)' },
  'console-resume-window': { type: 'string', help: 'keep a browser terminal whose connection dropped this long for its user to resume, e.g. 10m; 0: end it at once (default 5m)' },
  'record-input': { type: 'boolean', help: "record browser terminals' keystrokes too (off by default: they capture passwords)" },
};

/** A comma-separated flag value as its items, trimmed, empty ones left out. */
function splitList(text: string | null): string[] {
  return (text ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

/** Builds and validates the relay's config, and the log format asked for, from argv and the environment. */
export function relayConfigFromArgs(argv: string[], env: NodeJS.ProcessEnv): { config: Readonly<RelayConfig>; logFormat: LogFormat | null } {
  const o = new Options(argv, RELAY_FLAGS, env, { command: 'relay' });
  const adminKeys: string[] = [];
  for (const file of o.strings('admin-key')) {
    try {
      adminKeys.push(...parsePublicKeys(readFileSync(file, 'utf8')).map((k) => k.line));
    } catch (err) {
      o.problems.push(`--admin-key ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  }
  const d = RELAY_DEFAULTS;
  const config: RelayConfig = {
    dataDir: o.string('data-dir') ?? '',
    sshListen: o.hostPort('ssh-listen', d.sshListen, true)!,
    publicAddress: o.string('public-address'),
    httpListen: o.string('http-listen') === 'off' ? null : o.hostPort('http-listen', d.httpListen, true),
    tlsCertFile: o.string('tls-cert'),
    tlsKeyFile: o.string('tls-key'),
    httpPlain: o.boolean('http-plain'),
    publicUrl: o.string('public-url'),
    trustedProxies: splitList(o.string('trusted-proxy')),
    agentEndpoints: o.string('agent-endpoints') === null ? null : splitList(o.string('agent-endpoints')),
    httpBodyLimitBytes: d.httpBodyLimitBytes,
    httpHeadersTimeoutMs: d.httpHeadersTimeoutMs,
    httpRequestTimeoutMs: d.httpRequestTimeoutMs,
    httpIdleTimeoutMs: d.httpIdleTimeoutMs,
    httpMaxConnections: d.httpMaxConnections,
    adminKeys,
    logLevel: o.logLevel(),
    keepaliveIntervalMs: o.duration('keepalive-interval', d.keepaliveIntervalMs),
    keepaliveCountMax: o.integer('keepalive-count', d.keepaliveCountMax, 1, 100),
    loginGraceMs: o.duration('login-grace', d.loginGraceMs),
    maxAuthAttempts: o.integer('max-auth-tries', d.maxAuthAttempts, 1, 100),
    maxConnections: o.integer('max-connections', d.maxConnections, 1, 10_000_000),
    maxUnauthenticated: o.integer('max-unauthenticated', d.maxUnauthenticated, 1, 1_000_000),
    maxUnauthenticatedPerAddress: o.integer('max-unauthenticated-per-address', d.maxUnauthenticatedPerAddress, 1, 1_000_000),
    maxUnidentified: o.integer('max-unidentified', d.maxUnidentified, 1, 1_000_000),
    maxUnauthenticatedInteractive: o.integer('max-unauthenticated-interactive', d.maxUnauthenticatedInteractive, 1, 1_000_000),
    maxHandshakes: o.integer('max-handshakes', d.maxHandshakes, 1, 1_000_000),
    maxInteractiveHandshakes: o.integer('max-interactive-handshakes', d.maxInteractiveHandshakes, 1, 1_000_000),
    handshakeSharePerAddress: o.integer('handshake-share-per-address', d.handshakeSharePerAddress, 1, 100),
    interactiveHandshakeSharePerAddress: o.integer('interactive-handshake-share-per-address', d.interactiveHandshakeSharePerAddress, 1, 100),
    handshakeQueueWaitMs: o.duration('handshake-queue-wait', d.handshakeQueueWaitMs),
    channelOpenTimeoutMs: o.duration('channel-open-timeout', d.channelOpenTimeoutMs),
    storeWatchIntervalMs: d.storeWatchIntervalMs,
    maxSessionsPerUser: o.integer('max-sessions-per-user', d.maxSessionsPerUser, 1, 1_000_000),
    maxSessionsPerDevice: o.integer('max-sessions-per-device', d.maxSessionsPerDevice, 1, 1_000_000),
    // Off is the default, and a duration of 0 is not one: '0' and 'off' say "never".
    sessionIdleTimeoutMs: ['0', 'off'].includes(o.string('session-idle-timeout') ?? '') ? 0 : o.duration('session-idle-timeout', d.sessionIdleTimeoutMs),
    recordingRetentionMs: ['0', 'off'].includes(o.string('recording-retention') ?? '') ? 0 : o.duration('recording-retention', d.recordingRetentionMs),
    consoleResumeWindowMs: o.string('console-resume-window') === '0' ? 0 : o.duration('console-resume-window', d.consoleResumeWindowMs),
    recordInput: o.boolean('record-input'),
    consoleUnackedBytes: d.consoleUnackedBytes,
    consoleInputQueueBytes: d.consoleInputQueueBytes,
    consolePingIntervalMs: d.consolePingIntervalMs,
    consoleOutputBytesPerSecond: d.consoleOutputBytesPerSecond,
    loginRefusalAudit: d.loginRefusalAudit,
    deviceReportAudit: d.deviceReportAudit,
    consoleSessionTtlMs: o.duration('console-session-ttl', d.consoleSessionTtlMs),
    webLoginRefusalAudit: d.webLoginRefusalAudit,
  };
  const logFormat = o.logFormat();
  o.check(relayConfigProblems(config));
  return { config: Object.freeze(config), logFormat };
}

/** Resolves when a stop signal arrives. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGTERM', on('SIGTERM'));
    process.once('SIGINT', on('SIGINT'));
  });
}

/** Runs `ferry relay`. */
export async function relayMain(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const { config, logFormat } = relayConfigFromArgs(argv, env);
  const log = createLogger(config.logLevel, 'relay', { format: chooseLogFormat(logFormat, process.stderr.isTTY === true) });
  let relay: Relay;
  try {
    relay = await startRelay(config, { log });
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError('FERRY_CONFIG_INVALID', `the relay could not start: ${(err as Error).message}`, { cause: err });
  }
  out.write(`ferry relay listening on ${relay.sshAddress.host}:${relay.sshAddress.port} (tokens say ${relay.agentEndpoints.join(', ')})\n`);
  out.write(`host key fingerprint ${relay.fingerprint}\n`);
  if (relay.http) {
    out.write(`console ${relay.http.url} (listening on ${relay.http.address.host}:${relay.http.address.port}${relay.http.tls ? '' : ', plain HTTP'})\n`);
    if (relay.http.certFingerprint) out.write(`https certificate SHA-256 ${relay.http.certFingerprint} (what a browser shows for it)\n`);
  }
  const sig = await untilSignal();
  log.info({ signal: sig }, 'stopping');
  await relay.stop();
  log.flush();
  return 0;
}
