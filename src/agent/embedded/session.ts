/**
 * One SSH session on the built-in server: a shell or a command, with or without a PTY, or
 * the SFTP subsystem; run as the login user, with exit status and signals passed back, and
 * the whole process group ended when the channel closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import * as pty from 'node-pty';
import type { Logger } from '../../common/log.ts';
import { onEndOfWrite } from '../../net/ssh2-internals.ts';
import { openOutputPipe, releaseChildEnd } from './output-pipe.ts';
import { sftpLogReader, type FileEvent } from './sftp-log.ts';
import { asUser, envAllowed, loginEnvironment, type LocalUser } from './users.ts';

/** Where Debian's OpenSSH SFTP server lives (package openssh-sftp-server, no sshd needed). */
export const SFTP_SERVER_PATHS = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'];

/** After a PTY program exits, how long to wait for the rest of its output before reporting the exit. */
const PTY_DRAIN_MS = 200;
/** Program output waiting for the channel before the program is paused. */
const OUTPUT_QUEUE_BYTES = 1024 * 1024;

/**
 * sftp-server's arguments: log to stderr (-e) at INFO, which names every file opened and the
 * bytes read and written at its close. The agent reads those lines (sftp-log.ts) for its
 * reports and never sends them to the client.
 */
const SFTP_SERVER_ARGS = ['-e', '-l', 'INFO'];

/** What a session tells the server about itself; server.ts turns it into reports. */
export interface SessionHooks {
  /** The channel, once a shell, command or subsystem starts. */
  onChannel(channel: ServerChannel): void;
  /** A shell, command or subsystem started. */
  onStart(info: { kind: 'shell' | 'exec' | 'subsystem'; command: string | null; pty: boolean }): void;
  /** It ended with this exit status or signal; both null when the channel closed before either was sent. */
  onEnd(info: { code: number | null; signal: string | null }): void;
  /** sftp-server closed a file it had read or written. */
  onFile(e: FileEvent): void;
}

/** Called once a program's exit has been sent to the client. */
type OnExit = (code: number | null, signal: string | null) => void;

type Running = {
  kill(signal: NodeJS.Signals): void;
  /** The client's reader of our stdout has gone (eow@openssh.com): stop sending it. */
  endOfWrite(): void;
};

/** Serves one session channel for `user`, telling `hooks` when it starts and ends and which files it reads and writes. */
export function serveSession(session: Session, user: LocalUser, agentUid: number, log: Logger, hooks: SessionHooks): void {
  let ptyInfo: PseudoTtyInfo | null = null;
  let running: Running | null = null;
  let resize: ((cols: number, rows: number) => void) | null = null;
  const env: Record<string, string> = {};

  session.on('pty', (accept, _reject, info) => { ptyInfo = info; accept?.(); });
  session.on('env', (accept, reject, info) => {
    if (envAllowed(info.key) && Object.keys(env).length < 64 && info.val.length < 4096) { env[info.key] = info.val; accept?.(); } else reject?.();
  });
  session.on('window-change', (accept, _reject, info) => { resize?.(info.cols, info.rows); accept?.(); });
  session.on('signal', (accept, _reject, info) => { running?.kill(`SIG${info.name}` as NodeJS.Signals); accept?.(); });
  onEndOfWrite(session, () => running?.endOfWrite());
  for (const refused of ['x11', 'auth-agent'] as const) session.on(refused, (_accept: unknown, reject: () => void) => reject?.());

  // One end per session: the exit sent, or the channel closed without one.
  let ended = false;
  const onExit: OnExit = (code, signal) => { if (!ended) { ended = true; hooks.onEnd({ code, signal }); } };
  const begin = (channel: ServerChannel, kind: 'shell' | 'exec' | 'subsystem', command: string | null) => {
    hooks.onChannel(channel);
    hooks.onStart({ kind, command, pty: ptyInfo !== null });
    channel.once('close', () => onExit(null, null));
  };

  const start = (channel: ServerChannel, command: string | null) => {
    begin(channel, command === null ? 'shell' : 'exec', command);
    const argv = asUser(user, command === null ? [user.shell, '-l'] : [user.shell, '-c', command], agentUid);
    const environment = loginEnvironment(user, { ...env, ...(ptyInfo ? { TERM: ptyInfo.term || 'xterm' } : {}) });
    // The logger is bound to the login user already (server.ts): naming it again would write the key twice.
    log.info({ command: command === null ? '(shell)' : command.slice(0, 200), pty: ptyInfo !== null }, 'session started');
    const owner = agentUid === 0 ? { uid: user.uid, ttyGid: ttyGroup() ?? user.gid } : null;
    running = ptyInfo ? startPty(channel, argv, environment, user.home, ptyInfo, (r) => { resize = r; }, owner, onExit) : startPipes(channel, argv, environment, user.home, onExit);
  };

  session.on('shell', (accept) => start(accept(), null));
  session.on('exec', (accept, _reject, info) => start(accept(), info.command));
  session.on('subsystem', (accept, reject, info) => {
    const server = SFTP_SERVER_PATHS.find((p) => existsSync(p));
    if (info.name !== 'sftp' || !server) {
      log.warn({ subsystem: info.name }, server ? 'unknown subsystem refused' : 'sftp refused: no sftp-server on this device (install openssh-sftp-server)');
      return reject();
    }
    // The SFTP server runs as the login user, so files are read and written with that user's rights.
    const channel = accept();
    begin(channel, 'subsystem', 'sftp');
    const sftpLog = sftpLogReader((e) => hooks.onFile(e), (line) => log.debug({ line: line.slice(0, 200) }, 'sftp-server'));
    running = startPipes(channel, asUser(user, [server, ...SFTP_SERVER_ARGS], agentUid), loginEnvironment(user, {}), user.home, onExit, (d) => sftpLog.push(d));
  });
  session.on('close', () => running?.kill('SIGHUP'));
}

/** Sends the exit status (or signal) then ends the channel: clients report -1 otherwise. */
function reportExit(channel: ServerChannel, code: number | null, signal: string | null, onExit: OnExit): void {
  if (!channel.writable) return;
  const name = signal ? signal.replace(/^SIG/, '') : null;
  if (name) channel.exit(name, false, '');
  else channel.exit(code ?? 255);
  onExit(name ? null : code ?? 255, name);
  channel.end();
}

/** Kills the whole process group (background jobs too), then the leader as a fallback. */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try { process.kill(-pid, signal); } catch { try { process.kill(pid, signal); } catch { /* gone already */ } }
}

/**
 * Copies a program's stdout and stderr to the channel one write at a time, in the order they
 * came, with back-pressure on both. One at a time: ssh2 mishandles a channel whose stdout and
 * stderr both wait for window space (see fixSsh2StaleChunks). `drained` runs once both
 * outputs have ended and everything has been handed to ssh2. The function returned closes
 * the program's stdout and drops the rest of its output (see `endOfWrite` in startPipes).
 * With `stderrSink`, stderr goes there instead of to the client.
 */
function copyOutputs(stdout: Readable, stderr: Readable, channel: ServerChannel, onDrained: () => void, stderrSink?: (data: Buffer) => void): () => void {
  let done = false;
  const drained = () => { if (!done) { done = true; onDrained(); } };
  const queue: { err: boolean; data: Buffer }[] = [];
  let queued = 0;
  let writing = false;
  let open = 2;
  let discarding = false;
  const ended = new Set<unknown>();
  const end = (stream: unknown) => {
    if (ended.has(stream)) return;
    ended.add(stream);
    open--;
    if (!writing) next();
  };
  const next = () => {
    const item = queue.shift();
    if (!item) {
      writing = false;
      if (queued === 0) { stdout.resume(); stderr.resume(); }
      if (open === 0) drained();
      return;
    }
    writing = true;
    queued -= item.data.length;
    const target = item.err ? channel.stderr : channel;
    if (!target.writable) return next();
    target.write(item.data, () => next());
  };
  for (const [stream, err] of [[stdout, false], [stderr, true]] as const) {
    stream.on('data', (data: Buffer) => {
      if (err && stderrSink) return stderrSink(data);
      if (discarding) return;
      queue.push({ err, data });
      queued += data.length;
      if (queued > OUTPUT_QUEUE_BYTES) { stdout.pause(); stderr.pause(); }
      if (!writing) next();
    });
    stream.on('end', () => end(stream));
  }
  return () => {
    // The client shows nothing more (OpenSSH drops stderr after eow too), so nothing more is
    // sent; stderr is still read, so that writing there does not fail, as with sshd.
    discarding = true;
    queue.length = 0;
    queued = 0;
    stderr.resume();
    // Destroying the read end of the pipe is what makes the program's next write fail (SIGPIPE).
    stdout.destroy();
    end(stdout);
  };
}

function startPipes(channel: ServerChannel, argv: string[], env: Record<string, string>, cwd: string, onExit: OnExit, stderrSink?: (data: Buffer) => void): Running {
  let child: ChildProcess | null = null;
  let closed = false;
  let closeStdout: (() => void) | null = null;
  let endOfWrite = false;
  channel.on('close', () => { closed = true; killGroup(child?.pid, 'SIGHUP'); });
  // stdout is a real pipe where possible, so that closing it (eow) ends the program with SIGPIPE.
  void openOutputPipe().then((out) => {
    if (closed) {
      if (out) { releaseChildEnd(out); out.reader.destroy(); }
      return;
    }
    // Its own process group (detached) so that closing the channel can end everything it started.
    const c: ChildProcess = spawn(argv[0]!, argv.slice(1), { env, cwd: existsSync(cwd) ? cwd : '/', detached: true, stdio: ['pipe', out?.childEnd ?? 'pipe', 'pipe'] });
    child = c;
    if (out) releaseChildEnd(out);
    const stdout = out?.reader ?? c.stdout!;
    stdout.on('error', () => {});
    channel.pipe(c.stdin!);
    c.stdin!.on('error', () => {});
    let drained = false;
    let exit: { code: number | null; signal: string | null } | null = null;
    // The exit is reported only after the last output byte: clients stop reading at exit-status.
    const finish = () => { if (exit && drained) reportExit(channel, exit.code, exit.signal, onExit); };
    closeStdout = copyOutputs(stdout, c.stderr!, channel, () => { drained = true; finish(); }, stderrSink);
    c.on('error', (err) => {
      stdout.destroy();
      channel.stderr.write(`ferry: cannot start ${argv[0]}: ${err.message}\r\n`);
      exit = { code: 127, signal: null };
      drained = true;
      finish();
    });
    c.on('exit', (code, signal) => { exit = { code, signal }; finish(); });
    if (endOfWrite) closeStdout();
  });
  return {
    // A signal that comes before the program has started is dropped, as sshd would have nothing to send it to.
    kill: (s) => killGroup(child?.pid, s),
    // As sshd does on eow@openssh.com: close the program's stdout, so that its next write there
    // fails (SIGPIPE) and the session ends with that.
    endOfWrite: () => { endOfWrite = true; closeStdout?.(); },
  };
}

/**
 * Hands the terminal to the login user, as sshd does (owner the user, group tty, mode 620):
 * node-pty opens it as the agent, and a user could not open their own terminal otherwise.
 */
function giveTerminal(term: pty.IPty, owner: { uid: number; ttyGid: number }): void {
  const path = (term as unknown as { ptsName?: string }).ptsName;
  if (!path?.startsWith('/dev/')) return;
  try {
    chownSync(path, owner.uid, owner.ttyGid);
    chmodSync(path, 0o620);
  } catch { /* the session still works; only opening /dev/tty again would fail */ }
}

function startPty(channel: ServerChannel, argv: string[], env: Record<string, string>, cwd: string, info: PseudoTtyInfo, onResize: (r: (c: number, r: number) => void) => void, owner: { uid: number; ttyGid: number } | null, onExit: OnExit): Running {
  const term = pty.spawn(argv[0]!, argv.slice(1), {
    name: info.term || 'xterm', cols: info.cols || 80, rows: info.rows || 24, cwd: existsSync(cwd) ? cwd : '/', env,
    // Bytes, not strings: decoding here would garble anything that is not UTF-8.
    encoding: null,
  } as pty.IPtyForkOptions);
  onResize((cols, rows) => { try { term.resize(cols, rows); } catch { /* exited */ } });
  if (owner) giveTerminal(term, owner);
  let lastData = Date.now();
  let stopped = false;
  term.onData((d: string | Buffer) => { lastData = Date.now(); if (!stopped) channel.write(d); });
  channel.on('data', (d: Buffer) => term.write(d as unknown as string));
  term.onExit(({ exitCode, signal }) => {
    // node-pty may report the exit before the last output has been read: wait until it is quiet.
    const started = Date.now();
    const check = () => {
      if (Date.now() - lastData >= 50 || Date.now() - started >= PTY_DRAIN_MS) reportExit(channel, exitCode, signal ? `SIG${signalName(signal)}` : null, onExit);
      else setTimeout(check, 25);
    };
    setTimeout(check, 25);
  });
  channel.on('close', () => killGroup(term.pid, 'SIGHUP'));
  // On eow, as sshd does with a PTY: stop reading the terminal. A terminal has no reader to
  // lose, so there is no SIGPIPE: the program blocks once the terminal's buffer is full, and
  // ends when the operator interrupts it (the client's keyboard still works) or leaves.
  const endOfWrite = () => { stopped = true; term.pause(); };
  return { kill: (s) => killGroup(term.pid, s), endOfWrite };
}

function signalName(n: number): string {
  const names: Record<number, string> = { 1: 'HUP', 2: 'INT', 3: 'QUIT', 6: 'ABRT', 9: 'KILL', 13: 'PIPE', 14: 'ALRM', 15: 'TERM' };
  return names[n] ?? 'TERM';
}

let ttyGid: number | null | undefined;

/** The gid of group 'tty' (read once from /etc/group), or null when there is none. */
function ttyGroup(): number | null {
  if (ttyGid === undefined) {
    const line = (() => { try { return readFileSync('/etc/group', 'utf8'); } catch { return ''; } })().split('\n').find((l) => l.startsWith('tty:'));
    ttyGid = line ? Number(line.split(':')[2]) : null;
  }
  return ttyGid;
}
