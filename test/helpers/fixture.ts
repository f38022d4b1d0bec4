/**
 * A relay, its admin and devices, started in this process on loopback port 0, plus
 * process-level variants (`spawnRelay`, `spawnAgent`) for tests that kill or freeze them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startAgent, type Agent } from '../../src/agent/agent.ts';
import { AGENT_DEFAULTS, type AgentConfig } from '../../src/agent/config.ts';
import type { Clock } from '../../src/common/clock.ts';
import { createLogger, silentLogger, type Logger } from '../../src/common/log.ts';
import { runCommand, type CommandResult } from '../../src/relay/commands.ts';
import { createToken, perform, type Operation } from '../../src/relay/operations/index.ts';
import type { Principal } from '../../src/relay/principal.ts';
import { RELAY_DEFAULTS, type RelayConfig } from '../../src/relay/config.ts';
import { startRelay, type Relay } from '../../src/relay/relay.ts';
import { startThrowawaySshd, type ThrowawaySshd } from './throwaway-sshd.ts';
import { makeKey, tempDir } from './env.ts';
import { sshSetup, type SshSetup } from './ssh-client.ts';

/** The repository root and the ferry command. */
export const ROOT = resolve(import.meta.dirname, '../..');
export const FERRY = join(ROOT, 'bin/ferry.js');

/** FERRY_TEST_LOG=debug shows the components' logs while a test runs. */
export function testLogger(name: string): Logger {
  const level = process.env.FERRY_TEST_LOG;
  return level ? createLogger(level as 'debug', name) : silentLogger();
}

/** A relay config for tests: loopback, port 0, no HTTP listener unless asked for (test/integration/http.test.ts). */
export function testRelayConfig(dataDir: string, adminKeys: string[], overrides: Partial<RelayConfig> = {}): Readonly<RelayConfig> {
  return Object.freeze({ ...RELAY_DEFAULTS, dataDir, sshListen: { host: '127.0.0.1', port: 0 }, httpListen: null, publicAddress: null, adminKeys, logLevel: 'silent', ...overrides });
}

/** An agent config for tests: fast backoff so that reconnection tests do not wait long. */
export function testAgentConfig(stateDir: string, overrides: Partial<AgentConfig> = {}): Readonly<AgentConfig> {
  return Object.freeze({ ...AGENT_DEFAULTS, stateDir, relay: null, token: null, name: null, sshTarget: null, logLevel: 'silent', backoffBaseMs: 100, backoffMaxMs: 1_000, ...overrides });
}

/** The relay host's own administrator: the principal of `ferry COMMAND --data-dir`, with every action. */
export const LOCAL_ADMIN: Principal = { kind: 'local', user: 'local:test' };

/** A relay user logged in over SSH, for running operations as them (the key and address are only recorded). */
export function sshPrincipal(user: string, keyFingerprint = 'SHA256:test'): Principal {
  return { kind: 'ssh', user, keyFingerprint, remoteAddress: '127.0.0.1' };
}

/** What operations are told of the relay they run on. */
function relayFacts(relay: Relay) {
  return { publicAddress: relay.publicAddress, fingerprint: relay.fingerprint, hostKeyLine: relay.hostKeyLine, consoleUrl: relay.http?.url ?? null, agentEndpoints: relay.agentEndpoints, tlsPin: relay.tlsPin };
}

/** Runs operation `op` on a running relay's store as `principal` (default the local admin), in this process. */
export function operate<I, R>(relay: Relay, op: Operation<I, R>, input: I, principal: Principal = LOCAL_ADMIN): R {
  return perform({ store: relay.store, now: Date.now(), relay: relayFacts(relay) }, principal, op, input);
}

/** Runs an argv command on a running relay's store as `principal`, as `ssh relay WORDS…` would (for tests of the text front end). */
export function commandOn(relay: Relay, words: string[], principal: Principal = LOCAL_ADMIN): CommandResult {
  const { more, ...r } = runCommand({ store: relay.store, now: Date.now(), principal, relay: relayFacts(relay) }, words);
  return more ? { ...r, stdout: r.stdout + [...more].join('') } : r;
}

/** A running relay with an admin operator, and a way to add devices. */
export interface Fixture {
  dir: string;
  relay: Relay;
  admin: SshSetup;
  adminKey: { path: string; pub: string };
  /** A throwaway sshd that accepts the admin key: the devices' SSH target. */
  sshd: ThrowawaySshd;
  /** Creates a token as the local admin (in process). */
  token(input?: Parameters<typeof createToken.run>[2]): string;
  /** Runs an operation as `principal` (default the local admin). */
  operate<I, R>(op: Operation<I, R>, input: I, principal?: Principal): R;
  /** Runs an argv command as `principal` (default the local admin), as `ssh relay WORDS…` would. */
  command(words: string[], principal?: Principal): CommandResult;
  /** Enrols and starts an agent for `name` (approved unless told otherwise), pointed at the throwaway sshd. */
  device(name: string, opts?: { approve?: boolean; config?: Partial<AgentConfig> }): Promise<Agent>;
  /** ssh setup for another operator key. */
  setupFor(user: string, keyPath: string): SshSetup;
}

/** Starts a relay (and a throwaway sshd) for one test file; everything stops at its end. */
export async function startFixture(t: { after(fn: () => unknown): void }, relayOverrides: Partial<RelayConfig> = {}, opts: { clock?: Clock } = {}): Promise<Fixture> {
  const dir = tempDir(t);
  const adminKey = makeKey(dir, 'admin_key');
  const relay = await startRelay(testRelayConfig(join(dir, 'relay'), [adminKey.pub], relayOverrides), { log: testLogger('relay'), clock: opts.clock });
  t.after(() => relay.stop());
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), [adminKey.pub]);
  t.after(() => sshd.stop());
  const setupFor = (user: string, keyPath: string) => sshSetup(dir, {
    port: relay.sshAddress.port, user, keyPath, relayKeyLine: relay.hostKeyLine, deviceUser: sshd.user,
    deviceKeys: { '*': sshd.hostKeyLine },
  });
  const token = (input: Parameters<typeof createToken.run>[2] = {}) => operate(relay, createToken, input).token;
  return {
    dir, relay, adminKey, sshd, token, setupFor,
    operate: (op, input, principal) => operate(relay, op, input, principal),
    command: (words, principal) => commandOn(relay, words, principal),
    admin: setupFor('admin', adminKey.path),
    async device(name, opts = {}) {
      const tok = token({ name, approve: opts.approve !== false });
      const agent = await startAgent(testAgentConfig(join(dir, `agent-${name}`), {
        token: tok, relay: `127.0.0.1:${relay.sshAddress.port}`, sshTarget: { host: '127.0.0.1', port: sshd.port }, ...opts.config,
      }), { log: testLogger(`agent-${name}`) });
      t.after(() => agent.stop());
      await agent.waitUntilUp();
      return agent;
    },
  };
}

/** A ferry process and what it has printed so far. */
export interface FerryProcess {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first match of `pattern` in stdout+stderr (waiting for it to appear). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves with the exit code when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `ferry ARGS…` as its own process. */
export function spawnFerry(t: { after(fn: () => unknown): void }, args: string[], env: NodeJS.ProcessEnv = {}, command: string[] = [process.execPath, FERRY]): FerryProcess {
  const proc = spawn(command[0]!, [...command.slice(1), ...args], { env: { ...process.env, FERRY_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const poke = () => { for (const w of [...waiters]) w(); };
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); poke(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); poke(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => { poke(); r(code); }));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  t.after(() => stop('SIGKILL'));
  return {
    proc, stdout: () => out, stderr: () => err, stop,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (out + err).match(pattern);
          if (m) { done(); resolve(m); } else if (proc.exitCode !== null || proc.signalCode !== null) { done(); reject(new Error(`ferry ${args[0]} exited (${proc.exitCode ?? proc.signalCode}) before printing ${pattern}:\n${out}\n${err}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`ferry ${args[0]} did not print ${pattern} within ${timeoutMs} ms:\n${out}\n${err}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Spawns a relay process on 127.0.0.1 and waits until it listens. */
export async function spawnRelay(t: { after(fn: () => unknown): void }, dataDir: string, args: string[] = [], command?: string[]): Promise<FerryProcess & { port: number; fingerprint: string }> {
  const p = spawnFerry(t, ['relay', '--data-dir', dataDir, '--ssh-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...args], {}, command);
  const port = Number((await p.waitFor(/listening on [^\s]+:(\d+)/))[1]);
  const fingerprint = (await p.waitFor(/fingerprint (SHA256:\S+)/))[1]!;
  return { ...p, port, fingerprint };
}

/** Spawns an agent process; resolves once its first link is up. */
export async function spawnAgent(t: { after(fn: () => unknown): void }, stateDir: string, args: string[] = [], command?: string[]): Promise<FerryProcess> {
  const p = spawnFerry(t, ['agent', '--state-dir', stateDir, ...args], {}, command);
  await p.waitFor(/"msg":"link up"/);
  return p;
}
