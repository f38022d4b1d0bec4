/** Test environment helpers: temp dirs, keys, and running real programs. */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A temp dir removed when the test (or suite) ends. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'ferry-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Creates an Ed25519 key with OpenSSH's ssh-keygen; returns the private key path and the public line. */
export function makeKey(dir: string, name: string): { path: string; pub: string } {
  const path = join(dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return { path, pub: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** What a finished program printed and returned. */
export interface RunResult { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs a program to completion (bounded by `timeoutMs`), never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : child.exitCode) : 0, signal: e?.signal ?? null, stdout, stderr });
      });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Whether a program is on this machine; a test that needs one skips with this reason when not. */
export function missing(program: string, debianPackage: string): string | false {
  const r = spawnSync('sh', ['-c', `command -v ${program}`]);
  return r.status === 0 ? false : `needs ${program} (Debian package ${debianPackage}); .ci/run installs it`;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. For conditions no event announces. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export type { TestContext };

/**
 * A cleanup list for a whole test file: `before` hooks register into it, and it runs (last
 * in, first out) in the file's `after` hook. Pass it where a TestContext-like `after` is wanted.
 */
export function fileCleanup(after: (fn: () => Promise<void>) => void): { after(fn: () => unknown): void } {
  const fns: (() => unknown)[] = [];
  after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return { after: (fn) => { fns.push(fn); } };
}
