/**
 * Simulated devices, many in one process: each is a plain ssh2 Client that logs in as an
 * enrolled device with its own key, from its own loopback source address (127.10.x.y: real
 * fleets come from many addresses, and the relay limits unauthenticated connections per
 * address), and registers its tunnel with tcpip-forward. Each dials through the agent's
 * Dialer interface: TCP to the relay's SSH port by default, or the wss:// endpoint the
 * 'start' request names (the link inside a WebSocket, TLS pinned or CA-checked). The agent's own retry loop
 * (runLinkLoop, default backoff and reset) keeps each one up, so a relay restart is
 * followed by the same reconnect pattern a real fleet would show. No channels are served.
 *
 * Controlled over IPC by the benchmark; exits when the benchmark goes away.
 */
import ssh2 from 'ssh2';
import type { Algorithms } from 'ssh2';
import { fastRetryFor } from '../../src/agent/agent.ts';
import { AGENT_DEFAULTS } from '../../src/agent/config.ts';
import { runLinkLoop } from '../../src/agent/link-loop.ts';
import { systemClock } from '../../src/common/clock.ts';
import { fingerprintOf, generateKeyPair } from '../../src/common/ssh-keys.ts';
import { tcpDialer, type Dialer } from '../../src/net/dialer.ts';
import { webSocketDialer } from '../../src/net/ws-dialer.ts';
import { parseRelayEndpoint } from '../../src/protocol/relay-endpoint.ts';
import { AGENT_LOGIN } from '../../src/protocol/names.ts';
import { DEVICE_SSH_PORT } from '../../src/protocol/limits.ts';
import { SSH_ALGORITHMS } from '../../src/protocol/ssh-algorithms.ts';
import { VERSION } from '../../src/protocol/version.ts';

/** Requests the benchmark sends. */
export type SimRequest =
  | { id: number; op: 'keys'; count: number }
  /**
   * Devices [from, to) start linking. `endpoint` (optional): a wss:// endpoint to dial instead
   * of TCP 127.0.0.1:relayPort, with `tlsPin` (null or absent: verify against the system's CAs).
   */
  | { id: number; op: 'start'; relayPort: number; fingerprint: string; from: number; to: number; perSecond: number; endpoint?: string; tlsPin?: string | null }
  | { id: number; op: 'status' }
  | { id: number; op: 'waits'; since: number }
  | { id: number; op: 'stop' };
export type SimReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
/** What 'status' answers. */
export interface SimStatus { started: number; online: number; attempts: number; failures: number; failuresByKind: Record<string, number> }
/** What 'waits' answers: for each device that went down after `since`, ms from going down to up again (null: not yet). */
export interface SimWaits { waits: (number | null)[]; lastUpAt: number | null }

interface Device {
  index: number;
  name: string;
  address: string;
  privateKey: string;
  online: boolean;
  downAt: number | null;
  upAt: number | null;
  client: InstanceType<typeof ssh2.Client> | null;
}

const devices: Device[] = [];
const lifetime = new AbortController();
let attempts = 0;
let failures = 0;
const failuresByKind: Record<string, number> = {};

/** Why an attempt failed, in a few words that group alike failures. */
function failureKind(err: Error & { code?: string; level?: string }): string {
  // The dialers' FerryErrors keep the socket's error as their cause.
  const cause = (err.cause as { code?: string } | undefined)?.code;
  if (err.code === 'ECONNREFUSED' || cause === 'ECONNREFUSED') return 'refused (relay down)';
  if (err.code === 'FERRY_TIMEOUT' && /^connecting to|did not answer/.test(err.message)) return 'connect timeout';
  if (err.level === 'client-timeout' || /timed? ?out/i.test(err.message)) return 'timed out';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || /Connection lost before handshake|closed/i.test(err.message)) return 'closed by the relay (shed)';
  return err.message.slice(0, 60);
}

/** Device i's name and source address. */
const nameOf = (i: number) => `sim-${String(i).padStart(6, '0')}`;
const addressOf = (i: number) => `127.${10 + Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;

/**
 * A new Ed25519 key. ssh2's generateKeyPairSync writes a 31-byte public key (and an
 * unreadable private key) when the key's first byte is zero, about 1 key in 256, and
 * generateKeyPair then throws; a fleet of thousands always hits that, so try again.
 */
function newKey(comment: string): ReturnType<typeof generateKeyPair> {
  for (let tries = 1; ; tries++) {
    try {
      return generateKeyPair(comment);
    } catch (err) {
      if (tries >= 10) throw err;
    }
  }
}

/** Where the devices dial, as the 'start' request says. */
interface Target { relayPort: number; endpoint?: string; tlsPin?: string | null }

/**
 * Device d's dialer: from its own source address, TCP (no redial: one connect per attempt, the
 * load pattern the storm measures) or WebSocket.
 */
function dialerFor(d: Device, t: Target): Dialer {
  const cfg = AGENT_DEFAULTS;
  if (t.endpoint === undefined) return tcpDialer('127.0.0.1', t.relayPort, { keepaliveMs: cfg.keepaliveIntervalMs, redialMs: 0, localAddress: d.address });
  const e = parseRelayEndpoint(t.endpoint);
  if ('problem' in e) throw new Error(e.problem);
  if (e.transport !== 'wss') return tcpDialer(e.host, e.port, { keepaliveMs: cfg.keepaliveIntervalMs, redialMs: 0, localAddress: d.address });
  return webSocketDialer(e, { tlsPin: t.tlsPin ?? null, proxy: null, localAddress: d.address });
}

/** One attempt, as the agent's: a transport stream, SSH login with the pinned host key, tcpip-forward for the device name. */
async function attempt(d: Device, dialer: Dialer, fingerprint: string): Promise<{ closed: Promise<string> }> {
  attempts++;
  const cfg = AGENT_DEFAULTS;
  const sock = await dialer.dial(cfg.connectTimeoutMs);
  const client = new ssh2.Client();
  // ssh2 may emit 'error' more than once (a timeout, then the reset): one listener for its whole life.
  let failed: (err: Error) => void = () => {};
  client.on('error', (err: Error) => failed(err));
  try {
    await new Promise<void>((resolve, reject) => {
      failed = reject;
      client.once('ready', () => resolve());
      // As in the agent: a close before the login is only a 'close' in ssh2.
      client.once('close', () => reject(new Error('closed by the relay before the login finished')));
      client.connect({
        sock, username: AGENT_LOGIN, privateKey: d.privateKey, algorithms: SSH_ALGORITHMS as Algorithms, ident: `ferry-agent_${VERSION}`,
        hostVerifier: (key: Buffer) => fingerprintOf(key) === fingerprint,
        keepaliveInterval: cfg.keepaliveIntervalMs, keepaliveCountMax: cfg.keepaliveCountMax, readyTimeout: cfg.connectTimeoutMs,
      });
    });
    // From here on an error surfaces as 'close', which ends the link.
    failed = () => {};
    await new Promise<void>((resolve, reject) => client.forwardIn(d.name, DEVICE_SSH_PORT, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    client.end();
    sock.destroy();
    throw err;
  }
  d.client = client;
  return { closed: new Promise((resolve) => client.once('close', () => resolve('closed'))) };
}

function start(target: Target, fingerprint: string, from: number, to: number, perSecond: number): void {
  const cfg = AGENT_DEFAULTS;
  // A bad endpoint fails the request at once, not every attempt.
  if (target.endpoint !== undefined && 'problem' in parseRelayEndpoint(target.endpoint)) throw new Error(`endpoint: ${target.endpoint} is not a relay endpoint`);
  let i = from;
  const batch = Math.max(1, Math.ceil(perSecond / 20));
  const timer = setInterval(() => {
    for (let n = 0; n < batch && i < to; n++, i++) {
      const d = devices[i]!;
      const dialer = dialerFor(d, target);
      void runLinkLoop({
        clock: systemClock, signal: lifetime.signal, backoff: { baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs }, resetAfterMs: cfg.backoffResetAfterMs,
        // As the agent's: the dialer marks attempts that found no relay.
        fastRetry: fastRetryFor(cfg),
        attempt: () => attempt(d, dialer, fingerprint),
        onUp: () => { d.online = true; d.upAt = Date.now(); },
        onDown: () => { d.online = false; d.downAt = Date.now(); d.client = null; },
        onFailure: (err) => {
          failures++;
          const kind = failureKind(err as Error);
          failuresByKind[kind] = (failuresByKind[kind] ?? 0) + 1;
        },
      });
    }
    if (i >= to) clearInterval(timer);
  }, 50);
}

function handle(req: SimRequest): unknown {
  switch (req.op) {
    case 'keys': {
      const out: { name: string; keyLine: string }[] = [];
      for (let i = devices.length; i < req.count; i++) {
        const k = newKey(nameOf(i));
        devices.push({ index: i, name: nameOf(i), address: addressOf(i), privateKey: k.privateKey, online: false, downAt: null, upAt: null, client: null });
        out.push({ name: nameOf(i), keyLine: k.publicKey.line });
      }
      return out;
    }
    case 'start':
      start({ relayPort: req.relayPort, endpoint: req.endpoint, tlsPin: req.tlsPin }, req.fingerprint, req.from, req.to, req.perSecond);
      return null;
    case 'status':
      return { started: devices.length, online: devices.filter((d) => d.online).length, attempts, failures, failuresByKind: { ...failuresByKind } } satisfies SimStatus;
    case 'waits': {
      const downs = devices.filter((d) => d.downAt !== null && d.downAt >= req.since);
      const waits = downs.map((d) => (d.online && d.upAt !== null && d.upAt >= d.downAt! ? d.upAt - d.downAt! : null));
      const ups = downs.filter((d) => d.online).map((d) => d.upAt!);
      return { waits, lastUpAt: ups.length ? Math.max(...ups) : null } satisfies SimWaits;
    }
    case 'stop':
      lifetime.abort();
      for (const d of devices) d.client?.end();
      return null;
  }
}

process.on('message', (req: SimRequest) => {
  let reply: SimReply;
  try {
    reply = { id: req.id, ok: true, value: handle(req) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: (err as Error).message };
  }
  process.send!(reply);
});
process.once('disconnect', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
