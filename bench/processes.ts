/**
 * What a benchmark owns: child processes and temp dirs, each registered with a Scope that
 * stops and removes them in reverse order, on success, on failure and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '..');

/** How long a child may take to exit after SIGTERM before it and its descendants get SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** How much of a child's output is kept for waitFor and for failure reports. */
const OUTPUT_KEEP_BYTES = 256 * 1024;
/** Longest a single cleanup step may take before the next one runs anyway. */
const CLEANUP_STEP_MS = 15_000;

/** Every child started by any scope, so that an exit path can still kill what is left. */
const live = new Set<ChildProcess>();

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects with a message saying what did not happen in time. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A list of cleanups run last-in first-out by close(). */
export class Scope {
  readonly #fns: (() => unknown)[] = [];

  defer(fn: () => unknown): void { this.#fns.push(fn); }

  /** A temp dir removed when the scope closes. */
  tempDir(prefix = 'ferry-bench-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async close(): Promise<void> {
    while (this.#fns.length > 0) {
      const fn = this.#fns.pop()!;
      try {
        await withTimeout(Promise.resolve().then(fn), CLEANUP_STEP_MS, 'a cleanup step');
      } catch (err) {
        process.stderr.write(`bench: cleanup step failed: ${(err as Error).message}\n`);
      }
    }
  }
}

/** Pids of every process below `pid`, read from /proc (children first found, then theirs). */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch { /* the process ended while we looked */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) if (parent === p) { out.push(child); queue.push(child); }
  }
  return out;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try { process.kill(p, sig); } catch { /* already gone */ }
  }
}

/** A running child and what it has printed. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** The last OUTPUT_KEEP_BYTES of stdout and stderr, interleaved. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output, waiting for it to appear. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** SIGTERM (or `sig`), then SIGKILL to it and its descendants after a grace period. */
  stop(sig?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** SIGKILL to it and every descendant at once: a crash. */
  kill9(): Promise<void>;
}

/** Spawns `cmd args` as a child of `scope`; it is stopped when the scope closes. `stderrFile` (an fd, closed here) takes its stderr. */
export function startChild(scope: Scope, name: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; ipc?: boolean; stderrFile?: number } = {}): Child {
  const stdio: ('ignore' | 'pipe' | 'ipc' | number)[] = ['ignore', 'pipe', opts.stderrFile ?? 'pipe'];
  if (opts.ipc) stdio.push('ipc');
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio });
  if (opts.stderrFile !== undefined) closeSync(opts.stderrFile);
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  live.add(proc);
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    text += d.toString();
    if (text.length > OUTPUT_KEEP_BYTES * 2) text = text.slice(-OUTPUT_KEEP_BYTES);
    for (const w of [...waiters]) w();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => {
    live.delete(proc);
    for (const w of [...waiters]) w();
    r(code);
  }));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const stopTree = async (sig: NodeJS.Signals, graceMs: number) => {
    // A pid that has exited may already belong to someone else: leave it alone.
    if (!running()) return;
    // Snapshot first: once the root is gone its children are re-parented and cannot be found.
    const below = descendants(proc.pid!);
    proc.kill(sig);
    await Promise.race([exited, sleep(graceMs)]);
    signal(running() ? [proc.pid!, ...below] : below, 'SIGKILL');
    await Promise.race([exited, sleep(1_000)]);
  };
  const child: Child = {
    name, proc, pid: proc.pid, exited,
    get running() { return running(); },
    output: () => text,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern);
          if (m) { done(); resolve(m); } else if (!running()) { done(); reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before printing ${pattern}:\n${text.slice(-3000)}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${text.slice(-3000)}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    stop: (sig = 'SIGTERM', graceMs = STOP_GRACE_MS) => stopTree(sig, graceMs),
    kill9: () => stopTree('SIGKILL', 0),
  };
  scope.defer(() => child.stop());
  return child;
}

/** The node command line that runs a TypeScript file (through tsx) with extra node flags. */
export function nodeArgs(file: string, nodeFlags: string[] = []): string[] {
  return [...nodeFlags, '--import', 'tsx', join(ROOT, file)];
}

/** Last resort on any exit: SIGKILL whatever child (and descendant) is still alive. */
export function killAllChildrenNow(): void {
  for (const proc of live) {
    if (proc.pid === undefined) continue;
    let below: number[] = [];
    try { below = descendants(proc.pid); } catch { /* /proc unreadable */ }
    signal([proc.pid, ...below], 'SIGKILL');
  }
  live.clear();
}

/** A request type without its id (distributes over unions). */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** Request/reply over a node child's IPC channel: `{ id, op, … }` out, `{ id, ok, value | error }` back. */
export function ipcCaller<Req extends { id: number; op: string }>(child: Child, timeoutMs: number): (req: WithoutId<Req>) => Promise<unknown> {
  const pending = new Map<number, (r: Reply) => void>();
  let nextId = 1;
  child.proc.on('message', (m: Reply | { type: string }) => {
    if (!('id' in m)) return;
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const gone = () => ({ id: 0, ok: false as const, error: `${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}):\n${child.output().slice(-3000)}` });
  void child.exited.then(() => {
    for (const answer of pending.values()) answer(gone());
    pending.clear();
  });
  return (req) => {
    if (!child.running) return Promise.reject(new Error(gone().error));
    const id = nextId++;
    const reply = new Promise<unknown>((resolve, reject) => pending.set(id, (m) => (m.ok ? resolve(m.value) : reject(new Error(m.error)))));
    child.proc.send({ ...req, id });
    return withTimeout(reply, timeoutMs, `${child.name} to answer '${req.op}'`);
  };
}
