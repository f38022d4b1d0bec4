/**
 * ferry's side of a benchmark: the relay in its own process (children/relay-host.ts), and
 * agents as real `ferry agent` processes (bin/ferry.js), each optionally under --cpu-prof.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RelayReady, RelayRequest } from './children/relay-host.ts';
import { ipcCaller, nodeArgs, startChild, withTimeout, type Child, type Scope, type WithoutId } from './processes.ts';

const RELAY_START_MS = 20_000;
const AGENT_UP_MS = 30_000;
const IPC_TIMEOUT_MS = 120_000;

/**
 * Node flags that write CPU profiles into `dir/name/` at exit, or none. Node names each file
 * by pid and thread: tsx's loader runs on a thread of its own, whose profile is the small one.
 */
export function profileFlags(dir: string | null, name: string): string[] {
  if (dir === null) return [];
  mkdirSync(join(dir, name), { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${join(dir, name)}`];
}

/** A running relay process. */
export interface FerryRelay {
  readonly port: number;
  readonly fingerprint: string;
  readonly hostKeyLine: string;
  /** The console's https:// base URL (self-signed), when started with `http`. */
  readonly httpUrl: string | null;
  /** The pin of its self-signed HTTPS certificate's key, when started with `http`. */
  readonly tlsPin: string | null;
  readonly child: Child;
  readonly dataDir: string;
  /** Sends one request over IPC and resolves with the relay's answer. */
  call(req: WithoutId<RelayRequest>): Promise<unknown>;
}

/** What startFerryRelay needs. `port` 0 picks one; a restart passes the old one. */
export interface RelayOptions { dataDir: string; port?: number; host?: string; adminKey: string; http?: boolean; httpPort?: number; profileDir?: string | null; extraNodeFlags?: string[]; stderrFile?: number }

/** Starts the relay process and waits for it to listen. */
export async function startFerryRelay(scope: Scope, o: RelayOptions): Promise<FerryRelay> {
  const flags = [...profileFlags(o.profileDir ?? null, 'relay'), '--expose-gc', ...(o.extraNodeFlags ?? [])];
  const child = startChild(scope, 'ferry-relay', process.execPath, nodeArgs('bench/children/relay-host.ts', flags), {
    ipc: true, ...(o.stderrFile === undefined ? {} : { stderrFile: o.stderrFile }), env: { FERRY_BENCH_RELAY: JSON.stringify({ dataDir: o.dataDir, port: o.port ?? 0, adminKey: o.adminKey, host: o.host, http: o.http, httpPort: o.httpPort }) },
  });
  const ready = new Promise<RelayReady>((resolve) => {
    child.proc.on('message', (m: RelayReady | { id: number }) => { if ('type' in m) resolve(m); });
  });
  const exitedEarly = child.exited.then((code) => { throw new Error(`the relay exited (${code}) before it listened:\n${child.output().slice(-3000)}`); });
  const r = await withTimeout(Promise.race([ready, exitedEarly]), RELAY_START_MS, 'the relay to listen');
  return {
    port: r.port, fingerprint: r.fingerprint, hostKeyLine: r.hostKeyLine, httpUrl: r.httpUrl, tlsPin: r.tlsPin, child, dataDir: o.dataDir,
    call: ipcCaller<RelayRequest>(child, IPC_TIMEOUT_MS),
  };
}

/**
 * Enrolls device `name` with a one-use token and runs `ferry agent` for it, pointed at
 * 127.0.0.1:targetPort or its built-in server; linked to `endpoint` (default: the relay's SSH port).
 */
export async function startFerryAgent(scope: Scope, dir: string, relay: FerryRelay, name: string, targetPort: number | 'embedded', profileDir: string | null = null, endpoint = `127.0.0.1:${relay.port}`): Promise<Child> {
  const token = await relay.call({ op: 'token', input: { name, approve: true } }) as string;
  const stateDir = join(dir, `agent-${name}`);
  const agent = startChild(scope, `agent-${name}`, process.execPath, [
    ...profileFlags(profileDir, `agent-${name}`), 'bin/ferry.js', 'agent', '--state-dir', stateDir, '--token', token,
    '--relay', endpoint, '--ssh-target', targetPort === 'embedded' ? 'embedded' : `127.0.0.1:${targetPort}`, '--log-level', 'info',
  ]);
  await agent.waitFor(/"msg":"link up"/, AGENT_UP_MS);
  return agent;
}

/** Runs `ferry agent` again from an existing state dir (the device restarting). */
export function restartFerryAgent(scope: Scope, dir: string, relay: FerryRelay, name: string): Child {
  return startChild(scope, `agent-${name}`, process.execPath, [
    'bin/ferry.js', 'agent', '--state-dir', join(dir, `agent-${name}`), '--relay', `127.0.0.1:${relay.port}`, '--log-level', 'info',
  ]);
}
