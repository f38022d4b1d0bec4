/**
 * A ferry relay in a process of its own, started exactly as `ferry relay` starts it
 * (startRelay with the CLI's defaults, logging at info to stderr), plus an IPC channel for
 * what the benchmark needs and the CLI does not offer: enrolling thousands of device keys
 * at once through the Store API, and a GC before a memory reading.
 *
 * Config comes as JSON in FERRY_BENCH_RELAY: { dataDir, port, adminKey, host?, http? } (host: 127.0.0.1
 * unless given; http: true adds the HTTPS listener on 127.0.0.1, port 0, self-signed, for the console).
 */
import { createHash, randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createLogger } from '../../src/common/log.ts';
import { parsePublicKey } from '../../src/common/ssh-keys.ts';
import { runCommand } from '../../src/relay/commands.ts';
import { createToken, perform, type CreateTokenInput } from '../../src/relay/operations/index.ts';
import { RELAY_DEFAULTS, type RelayConfig } from '../../src/relay/config.ts';
import { startRelay } from '../../src/relay/relay.ts';

/** Requests the benchmark sends, and what it gets back. */
export type RelayRequest =
  | { id: number; op: 'token'; input: CreateTokenInput }
  | { id: number; op: 'enroll'; devices: { name: string; keyLine: string }[] }
  | { id: number; op: 'gc' }
  | { id: number; op: 'online' }
  | { id: number; op: 'memory' }
  | { id: number; op: 'loop-delay' }
  | { id: number; op: 'login'; user: string };
export type RelayReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
export type RelayReady = { type: 'ready'; port: number; fingerprint: string; hostKeyLine: string; httpUrl: string | null; tlsPin: string | null };

const cfg = JSON.parse(process.env.FERRY_BENCH_RELAY ?? '{}') as { dataDir: string; port: number; adminKey: string; host?: string; http?: boolean; httpPort?: number };
const config: RelayConfig = Object.freeze({
  ...RELAY_DEFAULTS, dataDir: cfg.dataDir, sshListen: { host: cfg.host ?? '127.0.0.1', port: cfg.port }, httpListen: cfg.http === true ? { host: '127.0.0.1', port: cfg.httpPort ?? 0 } : null, publicAddress: null, adminKeys: [cfg.adminKey], logLevel: 'info',
});
const log = createLogger('info', 'relay');
const relay = await startRelay(config, { log });
// The relay's event-loop delay since the last 'loop-delay' request (10 ms resolution would hide the tail).
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const admin = { kind: 'local', user: 'local:bench' } as const;
const relayInfo = { publicAddress: relay.publicAddress, fingerprint: relay.fingerprint, agentEndpoints: relay.agentEndpoints, tlsPin: relay.tlsPin };

function handle(req: RelayRequest): unknown {
  switch (req.op) {
    case 'token': {
      return perform({ store: relay.store, now: Date.now(), relay: relayInfo }, admin, createToken, req.input).token;
    }
    case 'enroll': {
      // One token with as many uses as devices, redeemed once per key: what agents would do over SSH, minus the SSH.
      const id = `bench-${randomBytes(6).toString('hex')}`;
      const secretHash = createHash('sha256').update(randomBytes(16)).digest();
      const now = Date.now();
      relay.store.createToken({ id, createdBy: 'admin', createdAt: now, expiresAt: now + 3_600_000, usesLeft: req.devices.length, name: null, labels: {}, approve: true }, secretHash);
      for (const d of req.devices) {
        const key = parsePublicKey(d.keyLine);
        relay.store.redeemToken({ id, secretHash, requestedName: d.name, fallbackName: null, keyFingerprint: key.fingerprint, keyLine: key.line, now });
      }
      return req.devices.length;
    }
    case 'gc':
      (globalThis as { gc?: () => void }).gc?.();
      return process.memoryUsage();
    case 'online':
      return relay.registry.size;
    case 'memory':
      return process.memoryUsage();
    case 'loop-delay': {
      const v = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
      loopDelay.reset();
      return v;
    }
    case 'login': {
      // What `ssh relay login` prints for that user, run as the text front end runs it.
      const r = runCommand({ store: relay.store, now: Date.now(), principal: { kind: 'ssh', user: req.user, keyFingerprint: 'SHA256:bench', remoteAddress: '127.0.0.1' }, relay: { ...relayInfo, hostKeyLine: relay.hostKeyLine, consoleUrl: relay.http?.url ?? null } }, ['login']);
      if (r.code !== 0) throw new Error(`login failed: ${r.stderr}`);
      return r.stdout;
    }
  }
}

process.on('message', (req: RelayRequest) => {
  let reply: RelayReply;
  try {
    reply = { id: req.id, ok: true, value: handle(req) };
  } catch (err) {
    reply = { id: req.id, ok: false, error: (err as Error).message };
  }
  process.send!(reply);
});

const stop = async () => {
  await relay.stop();
  log.flush();
  // process.exit (not a signal death) lets --cpu-prof write its profile.
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
// The benchmark went away: do not outlive it.
process.once('disconnect', () => void stop());
process.send!({ type: 'ready', port: relay.sshAddress.port, fingerprint: relay.fingerprint, hostKeyLine: relay.hostKeyLine, httpUrl: relay.http ? `https://127.0.0.1:${relay.http.address.port}` : null, tlsPin: relay.http?.selfSignedPin ?? null } satisfies RelayReady);
