/**
 * Simulated devices, many in one process: each is a plain ssh2 Client that logs in as an
 * enrolled device with its own key, from its own loopback source address (127.10.x.y: real
 * fleets come from many addresses, and the relay limits unauthenticated connections per
 * address), and registers its tunnel with tcpip-forward. The agent's own retry loop
 * (runLinkLoop, default backoff and reset) keeps each one up, so a relay restart is
 * followed by the same reconnect pattern a real fleet would show. No channels are served.
 *
 * Controlled over IPC by the benchmark; exits when the benchmark goes away.
 */
import { connect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Algorithms } from 'ssh2';
import { fastRetryFor } from '../../src/agent/agent.ts';
import { AGENT_DEFAULTS } from '../../src/agent/config.ts';
import { runLinkLoop } from '../../src/agent/link-loop.ts';
import { systemClock } from '../../src/common/clock.ts';
import { fingerprintOf, generateKeyPair } from '../../src/common/ssh-keys.ts';
import { AGENT_LOGIN } from '../../src/protocol/names.ts';
import { DEVICE_SSH_PORT } from '../../src/protocol/limits.ts';
import { SSH_ALGORITHMS } from '../../src/protocol/ssh-algorithms.ts';
import { VERSION } from '../../src/protocol/version.ts';

/** Requests the benchmark sends. */
export type SimRequest =
  | { id: number; op: 'keys'; count: number }
  | { id: number; op: 'start'; relayPort: number; fingerprint: string; from: number; to: number; perSecond: number }
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
  if (err.code === 'ECONNREFUSED') return 'refused (relay down)';
  if (err.message === 'connect timeout') return 'connect timeout';
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

function connectFrom(port: number, localAddress: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
    const timer = setTimeout(() => { s.destroy(); reject(new Error('connect timeout')); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.off('error', onError); s.on('error', () => {}); resolve(s); });
    const onError = (err: Error) => { clearTimeout(timer); reject(err); };
    s.once('error', onError);
  });
}

/** One attempt, as the agent's: TCP, SSH login with the pinned host key, tcpip-forward for the device name. */
async function attempt(d: Device, relayPort: number, fingerprint: string): Promise<{ closed: Promise<string> }> {
  attempts++;
  const cfg = AGENT_DEFAULTS;
  const sock = await connectFrom(relayPort, d.address, cfg.connectTimeoutMs);
  sock.setKeepAlive(true, cfg.keepaliveIntervalMs);
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

function start(relayPort: number, fingerprint: string, from: number, to: number, perSecond: number): void {
  const cfg = AGENT_DEFAULTS;
  let i = from;
  const batch = Math.max(1, Math.ceil(perSecond / 20));
  const timer = setInterval(() => {
    for (let n = 0; n < batch && i < to; n++, i++) {
      const d = devices[i]!;
      void runLinkLoop({
        clock: systemClock, signal: lifetime.signal, backoff: { baseMs: cfg.backoffBaseMs, maxMs: cfg.backoffMaxMs }, resetAfterMs: cfg.backoffResetAfterMs,
        // As the agent's, with the sim's own test for "the relay is not there" (it dials by itself).
        fastRetry: { ...fastRetryFor(cfg)!, keepsFast: (err) => /^refused|^connect timeout/.test(failureKind(err as Error)) },
        attempt: () => attempt(d, relayPort, fingerprint),
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
      start(req.relayPort, req.fingerprint, req.from, req.to, req.perSecond);
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
