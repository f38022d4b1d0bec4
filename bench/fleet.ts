/**
 * A relay process and a fleet of simulated devices in another process (children/sim-devices.ts),
 * enrolled straight into the relay's store: for the idle-device and reconnect-storm scenarios.
 */
import { openSync } from 'node:fs';
import { join } from 'node:path';
import type { SimRequest, SimStatus, SimWaits } from './children/sim-devices.ts';
import type { BenchContext } from './context.ts';
import { startFerryRelay, type FerryRelay } from './ferry-setup.ts';
import { ipcCaller, nodeArgs, sleep, startChild, type WithoutId } from './processes.ts';

/** Connections opened per second while filling the fleet (the relay's handshake rate is the limit anyway). */
const FILL_PER_SECOND = 1_000;
const ENROLL_CHUNK = 2_000;

/** A relay with `size` enrolled simulated devices, none connected yet. */
export interface Fleet {
  relay: FerryRelay;
  size: number;
  sim(req: WithoutId<SimRequest>): Promise<unknown>;
  status(): Promise<SimStatus>;
  waits(since: number): Promise<SimWaits>;
  /** Connects devices [from, to) and waits until all of them are online; returns seconds taken. */
  fill(from: number, to: number, timeoutMs: number): Promise<number>;
  /** Kills the relay (SIGKILL) and starts a new one on the same port with the same data dir. */
  restartRelay(): Promise<{ killedAt: number; readyAt: number }>;
  /** Waits until `count` devices are online; returns when that happened (ms epoch), or throws after `timeoutMs`. */
  waitOnline(count: number, timeoutMs: number, pollMs?: number): Promise<number>;
}

/**
 * Starts the relay (logging to a file) and the simulated-device process, and enrolls `size`
 * keys. `link`: how the devices link, TCP to the SSH port or wss:// to the HTTPS listener.
 */
export async function startFleet(ctx: BenchContext, size: number, link: 'tcp' | 'wss' = 'tcp'): Promise<Fleet> {
  const dataDir = join(ctx.dir, `fleet-relay-${link}`);
  const logFile = () => openSync(join(ctx.dir, `fleet-relay-${link}.log`), 'a');
  const relayOptions = { dataDir, adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir, stderrFile: logFile(), http: link === 'wss' };
  let relay = await startFerryRelay(ctx.scope, relayOptions);
  // A restarted relay listens on the same ports, with the same certificate (it is in the data dir).
  const httpPort = relay.httpUrl === null ? undefined : Number(new URL(relay.httpUrl).port);
  const endpoint = link === 'wss' ? { endpoint: `${relay.httpUrl!.replace(/^https:/, 'wss:')}/`, tlsPin: relay.tlsPin } : {};
  const simChild = startChild(ctx.scope, 'sim-devices', process.execPath, nodeArgs('bench/children/sim-devices.ts', ['--max-old-space-size=8192']), { ipc: true });
  const sim = ipcCaller<SimRequest>(simChild, 300_000);
  const keys = await sim({ op: 'keys', count: size }) as { name: string; keyLine: string }[];
  for (let i = 0; i < keys.length; i += ENROLL_CHUNK) await relay.call({ op: 'enroll', devices: keys.slice(i, i + ENROLL_CHUNK) });
  const status = () => sim({ op: 'status' }) as Promise<SimStatus>;
  const waitOnline = async (count: number, timeoutMs: number, pollMs = 100) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await status();
      if (s.online >= count) return Date.now();
      if (Date.now() > deadline) throw new Error(`only ${s.online} of ${count} devices online after ${timeoutMs} ms (${s.attempts} attempts, ${s.failures} failures)`);
      await sleep(pollMs);
    }
  };
  const fleet: Fleet = {
    get relay() { return relay; },
    size, sim, status, waitOnline,
    waits: (since) => sim({ op: 'waits', since }) as Promise<SimWaits>,
    async fill(from, to, timeoutMs) {
      const t0 = Date.now();
      await sim({ op: 'start', relayPort: relay.port, fingerprint: relay.fingerprint, from, to, perSecond: FILL_PER_SECOND, ...endpoint });
      await waitOnline(to, timeoutMs, 250);
      return (Date.now() - t0) / 1000;
    },
    async restartRelay() {
      const killedAt = Date.now();
      await relay.child.kill9();
      relay = await startFerryRelay(ctx.scope, { ...relayOptions, port: relay.port, httpPort, stderrFile: logFile() });
      return { killedAt, readyAt: Date.now() };
    },
  };
  return fleet;
}
