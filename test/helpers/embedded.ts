/**
 * Helpers for the built-in SSH server's compatibility suite (test/integration/embedded-*):
 * a relay with devices whose target is the agent's embedded server, an OpenSSH setup that
 * pins those devices' host keys, a tmux-driven terminal, throwaway local users and groups,
 * and small file and process checks.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ForwardRule } from '../../src/agent/embedded/forward-policy.ts';
import { SFTP_SERVER_PATHS } from '../../src/agent/embedded/session.ts';
import { SETPRIV } from '../../src/agent/embedded/users.ts';
import { eventually, run } from './env.ts';
import { startFixture, type Fixture } from './fixture.ts';
import type { RelayConfig } from '../../src/relay/config.ts';
import { sshSetup, type SshSetup } from './ssh-client.ts';

type After = { after(fn: () => unknown): void };

/**
 * The login name the suite uses on devices: the user running the tests (the agent runs in
 * this process as that user). Root in CI; as anyone else the built-in server accepts only
 * the agent's own user, so the rest of the suite still runs.
 */
export const LOGIN = userInfo().username;

/** A relay with devices served by the agent's built-in SSH server, and the admin's OpenSSH setup for them. */
export interface EmbeddedFixture {
  f: Fixture;
  /** The admin's ssh_config and known_hosts: devices pinned by the host keys they reported, login LOGIN by default. */
  admin: SshSetup;
  /** An ssh setup for another operator key (same pinned device keys). */
  setupFor(user: string, keyPath: string): SshSetup;
}

/**
 * Starts a relay and one agent per entry of `devices` (name → forward rules, or null for the
 * default rules), each with `--ssh-target embedded`, and pins the devices' host keys: no
 * trust-on-first-use anywhere.
 */
export async function startEmbedded(t: After, devices: Record<string, readonly ForwardRule[] | null>, relayOverrides: Partial<RelayConfig> = {}): Promise<EmbeddedFixture> {
  const f = await startFixture(t, relayOverrides);
  for (const [name, forwardRules] of Object.entries(devices)) {
    await f.device(name, { config: { sshTarget: 'embedded', ...(forwardRules ? { forwardRules } : {}) } });
  }
  const deviceKeys: Record<string, string> = {};
  for (const name of Object.keys(devices)) {
    const line = f.relay.store.getDevice(name)?.hostKeyLine;
    if (!line) throw new Error(`device '${name}' reported no host key to the relay`);
    deviceKeys[name] = line;
  }
  let n = 0;
  const setupFor = (user: string, keyPath: string): SshSetup => {
    // Its own directory: sshSetup names its files after the relay user, and f.admin's must stay as they are.
    const dir = join(f.dir, `embedded-ssh-${user}-${n++}`);
    mkdirSync(dir);
    return sshSetup(dir, { port: f.relay.sshAddress.port, user, keyPath, relayKeyLine: f.relay.hostKeyLine, deviceKeys, deviceUser: LOGIN });
  };
  return { f, admin: setupFor('admin', f.adminKey.path), setupFor };
}

/**
 * A copy of `s` whose device connections share a ControlMaster (ControlPersist 60 s) at a
 * socket in `dir`. The relay connection itself stays unmultiplexed. ssh_config takes the
 * first value it sees, so the lines put first win over `ControlMaster no` further down.
 */
export function withControlMaster(s: SshSetup, dir: string, name: string): SshSetup & { controlPath: string } {
  const controlPath = join(dir, `cm-${name}`);
  const config = join(dir, `ssh_config-cm-${name}`);
  writeFileSync(config, ['Host * !relay', '  ControlMaster auto', `  ControlPath ${controlPath}`, '  ControlPersist 60', '', readFileSync(s.config, 'utf8')].join('\n'));
  return { ...s, config, controlPath };
}

/** How a command ended, as the SSH protocol said it: exit-status, or exit-signal and its name. */
export interface ProtocolExit { code: number | null; signal: string | null }

/**
 * Runs `command` on `device` as `login` with ssh2's client (through the relay, as admin),
 * and returns the exit-status or exit-signal exactly as the server sent it. OpenSSH's client
 * does not print the signal name, so tests that check it use this.
 */
export async function protocolExit(e: EmbeddedFixture, device: string, login: string, command: string, opts: { pty?: boolean; timeoutMs?: number } = {}): Promise<ProtocolExit> {
  const privateKey = readFileSync(e.f.adminKey.path);
  const pinned = (line: string) => (key: Buffer) => Buffer.from(line.split(' ')[1]!, 'base64').equals(key);
  const relay = new ssh2.Client();
  const inner = new ssh2.Client();
  const timer = setTimeout(() => { inner.end(); relay.end(); }, opts.timeoutMs ?? 20_000);
  try {
    await new Promise<void>((resolve, reject) => {
      relay.once('ready', resolve).once('error', reject).once('close', () => reject(new Error('relay connection closed')));
      relay.connect({ host: '127.0.0.1', port: e.f.relay.sshAddress.port, username: 'admin', privateKey, hostVerifier: pinned(e.f.relay.hostKeyLine) });
    });
    const stream = await new Promise<import('node:stream').Duplex>((resolve, reject) => relay.forwardOut('127.0.0.1', 0, device, 22, (err, ch) => (err ? reject(err) : resolve(ch))));
    await new Promise<void>((resolve, reject) => {
      inner.once('ready', resolve).once('error', reject).once('close', () => reject(new Error('device connection closed')));
      inner.connect({ sock: stream, username: login, privateKey, hostVerifier: pinned(e.f.relay.store.getDevice(device)!.hostKeyLine!) });
    });
    return await new Promise<ProtocolExit>((resolve, reject) => {
      inner.exec(command, opts.pty ? { pty: { rows: 24, cols: 80, term: 'vt100' } } : {}, (err, ch) => {
        if (err) return reject(err);
        let exit: ProtocolExit | null = null;
        ch.on('exit', (code: number | null, signal?: string) => { exit = { code: code ?? null, signal: signal ?? null }; });
        ch.on('close', () => (exit ? resolve(exit) : reject(new Error('the channel closed without exit-status or exit-signal'))));
        ch.resume();
        ch.stderr.resume();
      });
    });
  } finally {
    clearTimeout(timer);
    inner.end();
    relay.end();
  }
}

/**
 * A copy of `s` that reaches the relay with its own key but logs in to devices with
 * `keyPath`: so that a refusal can only come from the device's built-in server, not from
 * the relay's front door.
 */
export function withDeviceKey(s: SshSetup, dir: string, name: string, keyPath: string): SshSetup {
  const text = readFileSync(s.config, 'utf8');
  const at = text.indexOf('Host * !relay');
  if (at < 0) throw new Error(`unexpected ssh_config layout in ${s.config}`);
  const config = join(dir, `ssh_config-devkey-${name}`);
  writeFileSync(config, text.slice(0, at) + text.slice(at).replace(/^ {2}IdentityFile .*$/m, `  IdentityFile ${keyPath}`));
  return { ...s, config };
}

/** Why a test that must be root cannot run here, or false. */
export function notRoot(what: string): string | false {
  return process.getuid?.() === 0 ? false : `needs root (${what}); CI runs as root`;
}

/** Why the built-in server cannot run sessions as other users here, or false. */
export function cannotSwitchUsers(): string | false {
  return notRoot('the agent switches to the login user only when it runs as root') || (spawnSync('test', ['-x', SETPRIV]).status === 0 ? false : `needs ${SETPRIV} (Debian package util-linux)`);
}

/** Why the built-in server has no SFTP here, or false. */
export function noSftpServer(): string | false {
  return SFTP_SERVER_PATHS.some((p) => spawnSync('test', ['-x', p]).status === 0) ? false : 'needs sftp-server (Debian package openssh-sftp-server)';
}

/** The SHA-256 of a file, hex. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

/**
 * Writes `mib` MiB of random bytes to `path`, one MiB at a time. Random, not a repeated
 * pattern: blocks delivered out of order or twice must change the checksum.
 */
export function writeRandomFile(path: string, mib: number): void {
  const chunk = Buffer.alloc(1024 * 1024);
  writeFileSync(path, '');
  for (let i = 0; i < mib; i++) writeFileSync(path, randomFillSync(chunk), { flag: 'a' });
}

/** Runs a program to completion with binary stdin and stdout (bounded by `timeoutMs`). */
export function runBinary(cmd: string, args: string[], input: Buffer, timeoutMs = 60_000): Promise<{ code: number | null; signal: string | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }); });
    child.stdin.end(input);
  });
}

/** A long-running ssh (e.g. `-N -L …`) and what it has printed on stderr so far; killed by `t.after`. */
export interface SshProcess {
  proc: ChildProcess;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once it has ended. */
  exited: Promise<number | string | null>;
  stop(): Promise<void>;
}

/** Starts `ssh -F config ARGS…` in the background. */
export function spawnSsh(t: After, s: SshSetup, args: string[]): SshProcess {
  const proc = spawn('ssh', ['-F', s.config, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  // 'close', not 'exit': 'exit' can come before the last of stderr has been read, and tests match what ssh printed.
  const exited = new Promise<number | string | null>((r) => proc.once('close', (code, signal) => r(code ?? signal)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  return { proc, stderr: () => err, exited, stop };
}

/** Processes whose full command line matches `pattern` (pgrep -f), as "pid cmdline" lines. */
export function processesMatching(pattern: string): string[] {
  const r = spawnSync('pgrep', ['-a', '-f', pattern], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** A detached tmux session running one command in a window of a fixed size, on its own tmux server socket. */
export interface TmuxTerminal {
  /** Types text literally (tmux send-keys -l); add '\r' for Enter. */
  type(text: string): Promise<void>;
  /** Sends named keys, e.g. 'C-c'. */
  key(...keys: string[]): Promise<void>;
  /** The visible screen, lines joined with '\n' (trailing blanks trimmed). */
  screen(): Promise<string>;
  /** Polls the screen until `pattern` matches; returns the match. */
  waitFor(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resizes the tmux window (and so the pane, and the terminal ssh sees). */
  resize(cols: number, rows: number): Promise<void>;
  /** Polls until the command has ended and returns its exit code. */
  exitCode(timeoutMs?: number): Promise<number>;
}

let serial = 0;

/**
 * Starts `argv` in a new detached tmux session of `cols`×`rows` on a private tmux server,
 * killed by `t.after`. The command runs under `sh`, which prints its exit code when it ends
 * (tmux 3.3 does not report a dead pane's status reliably), and the pane stays to be read.
 */
export async function startTmux(t: After, dir: string, argv: string[], cols = 100, rows = 30): Promise<TmuxTerminal> {
  const n = serial++;
  const socket = join(dir, `tmux-${n}.sock`);
  const conf = join(dir, `tmux-${n}.conf`);
  // No status line, so the pane is the whole window; keep the pane when the command ends.
  writeFileSync(conf, 'set -g status off\nset -g remain-on-exit on\nset -g history-limit 5000\n');
  const tmux = (args: string[]) => run('tmux', ['-S', socket, '-f', conf, ...args], { timeoutMs: 10_000 });
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const command = `${argv.map(quote).join(' ')}; echo "[command exited $?]"`;
  // A known client-side environment: LANG matters for how tmux shows UTF-8.
  const r = await run('tmux', ['-S', socket, '-f', conf, 'new-session', '-d', '-s', 'ferry', '-x', String(cols), '-y', String(rows), command], {
    env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' }, timeoutMs: 10_000,
  });
  if (r.code !== 0) throw new Error(`tmux new-session failed: ${r.stderr}`);
  t.after(async () => { await tmux(['kill-server']); });
  const screen = async () => {
    const c = await tmux(['capture-pane', '-p', '-J', '-t', 'ferry']);
    return c.stdout.split('\n').map((l) => l.trimEnd()).join('\n').trimEnd();
  };
  const waitFor = async (pattern: RegExp, what: string, timeoutMs = 10_000) => {
    let last = '';
    try {
      return await eventually(async () => (last = await screen()).match(pattern), timeoutMs, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen shows:\n${last}`, { cause: err });
    }
  };
  return {
    async type(text) { await tmux(['send-keys', '-t', 'ferry', '-l', text]); },
    async key(...keys) { await tmux(['send-keys', '-t', 'ferry', ...keys]); },
    screen,
    waitFor,
    async resize(c, rw) { await tmux(['resize-window', '-t', 'ferry', '-x', String(c), '-y', String(rw)]); },
    async exitCode(timeoutMs = 10_000) { return Number((await waitFor(/\[command exited (\d+)\]/, 'the command to end', timeoutMs))[1]); },
  };
}

/** A throwaway local user (and secondary group), created with useradd/groupadd and removed by `t.after`. */
export interface LocalAccount { name: string; uid: number; gid: number; home: string; shell: string; group: string; groupGid: number }

/** Creates a user with a home dir, in a new secondary group; both are removed when the test ends. */
export function createAccount(t: After, prefix = 'fy'): LocalAccount {
  const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}${(serial++).toString(36)}`;
  const name = `${prefix}u${tag}`.slice(0, 31);
  const group = `${prefix}g${tag}`.slice(0, 31);
  const g = spawnSync('groupadd', [group], { encoding: 'utf8' });
  if (g.status !== 0) throw new Error(`groupadd ${group} failed: ${g.stderr}`);
  t.after(() => { spawnSync('groupdel', [group]); });
  const u = spawnSync('useradd', ['-m', '-s', '/bin/bash', '-G', group, name], { encoding: 'utf8' });
  if (u.status !== 0) throw new Error(`useradd ${name} failed: ${u.stderr}`);
  t.after(() => {
    spawnSync('pkill', ['-KILL', '-u', name]);
    spawnSync('userdel', ['-r', '-f', name]);
  });
  const pw = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout.trim().split(':');
  const groupGid = Number(spawnSync('getent', ['group', group], { encoding: 'utf8' }).stdout.split(':')[2]);
  return { name, uid: Number(pw[2]), gid: Number(pw[3]), home: pw[5]!, shell: pw[6]!, group, groupGid };
}
