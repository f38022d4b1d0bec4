/**
 * A console session: the relay's own SSH session to a device's built-in server, over the
 * device's link, for an operator's browser terminal. Unlike a jump (`ssh -J`), the relay is
 * the SSH client here, so it sees the terminal's bytes (to record them, later). It logs in
 * with its host key, which the device pinned at enrollment, as `OPERATOR:LOGIN`; the device
 * lets that in only with the grant its pushed list gives OPERATOR, so the relay's own check
 * (below) and the device's are the same rule applied twice.
 */
import { EventEmitter } from 'node:events';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Algorithms, ClientChannel } from 'ssh2';
import { FerryError, type FerryErrorCode } from '../common/errors.ts';
import { blobOf, sameKey } from '../common/ssh-keys.ts';
import { pipeBoth } from '../net/pipe.ts';
import { DEVICE_SSH_PORT, LIMITS } from '../protocol/limits.ts';
import { SSH_ALGORITHMS } from '../protocol/ssh-algorithms.ts';
import { terminalSizeProblem } from '../protocol/terminal-frames.ts';
import { mayLogin } from './access-policy.ts';
import type { RelayContext } from './context.ts';
import { userSubject } from './operations/index.ts';
import { reachDecision } from './policy.ts';
import { isRelayUser, type Principal } from './principal.ts';
import type { ReachEndReason } from './sessions.ts';

/** The terminal a console session asks the device for. */
export interface ConsoleTerminal { cols: number; rows: number; term: string }

/**
 * A live console session. `output` carries the terminal's bytes as the device sends them
 * (pausing it holds the device back: back-pressure goes all the way to the shell). Emits
 * 'exit' (code, signal) when the shell ends, 'end' (why, a ReachEndReason) once the
 * session is over, whoever ended it.
 */
export interface ConsoleSession extends EventEmitter {
  /** The session id, as in its reach.start and reach.end rows. */
  readonly id: string;
  readonly device: string;
  readonly login: string;
  readonly output: Readable;
  /** Sends keystrokes to the shell; false (and dropped) once the session has ended. */
  write(data: Uint8Array): boolean;
  /** Keystrokes written that the link has not taken yet: the caller bounds this (LIMITS.consoleInputQueueBytes). */
  readonly pendingInput: number;
  /** Tells the shell the terminal's new size. */
  resize(cols: number, rows: number): void;
  /** Ends the session (its reach.end row says 'client closed'). */
  close(): void;
}

/** What else a console session may be told when it opens. */
export interface ConsoleSessionOptions {
  /** The id of the recording the caller will write of it, for its reach rows (`recording`). */
  recording?: string;
}

/** A terminal type: what TERM may be set to (letters, digits, `-`, `_`, `.`, `+`). */
const TERM = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/**
 * Opens a console session for `principal` on `device` as `login`: checks the policy (the
 * principal's roles as the store has them now, the device approved and online) and the
 * tracker's caps, opens a channel on the device's link, logs in there as the relay and
 * starts a shell on a PTY. Rejects with a FerryError that says why not.
 */
export async function openConsoleSession(ctx: RelayContext, principal: Principal, device: string, login: string, terminal: ConsoleTerminal, opts: ConsoleSessionOptions = {}): Promise<ConsoleSession> {
  const problem = terminalSizeProblem(terminal.cols, terminal.rows) ?? (TERM.test(terminal.term) ? null : `the terminal type '${terminal.term}' is not a TERM name (letters, digits, - _ . +)`);
  if (problem) throw new FerryError('FERRY_USAGE', problem);
  const refuse = (code: FerryErrorCode, message: string, why = message): never => {
    ctx.store.audit({ at: ctx.clock.now(), actor: principal.user, action: 'reach.refused', target: ctx.store.getDevice(device) ? device : null, detail: { host: device, login, kind: 'console', remote: remoteOf(principal), why } });
    throw new FerryError(code, message);
  };
  if (!isRelayUser(principal)) {
    return refuse('FERRY_PERMISSION_DENIED', `the console opens sessions for relay users, whose keys the device knows; '${principal.user}' is the local CLI: use 'ssh -J' as a relay user`);
  }
  const subject = userSubject(ctx.store, principal.user);
  const record = ctx.store.getDevice(device);
  const link = ctx.registry.get(device);
  const reach = reachDecision(subject, device, DEVICE_SSH_PORT, record, link !== undefined, ctx.clock.now(), ctx.publicAddress);
  if (!reach.allow) return refuse(reach.kind === 'unavailable' ? 'FERRY_CONNECT_FAILED' : 'FERRY_PERMISSION_DENIED', reach.message, reach.why);
  const asLogin = mayLogin(subject, record!, login);
  if (!asLogin.allow) return refuse('FERRY_PERMISSION_DENIED', asLogin.message);
  if (record!.hostKeyLine === null) {
    return refuse('FERRY_CONNECT_FAILED', `device '${device}' reported no host key at enrollment, so the relay cannot check whom it would be talking to: re-enroll it with a current agent`);
  }

  // One tracker connection per console session: a revocation of the principal ends it, as it ends their SSH connections.
  let session: Session | null = null;
  const live = ctx.sessions.connect(principal, () => session?.close());
  const ticket = ctx.sessions.admit(live, device, link!, { kind: 'console', login, recording: opts.recording, onEnd: (why) => session?.ended(why) });
  if ('refused' in ticket) {
    ctx.sessions.disconnect(live);
    return refuse('FERRY_CONNECT_FAILED', ticket.refused);
  }
  const log = ctx.log.child({ user: principal.user, device, login });
  let shell: { client: ssh2.Client; channel: ClientChannel };
  try {
    const stream = await link!.openChannel({ address: remoteOf(principal) ?? '127.0.0.1', port: 0 }, ctx.config.channelOpenTimeoutMs);
    shell = await loginAndShell(ctx, stream, device, `${principal.user}:${login}`, record!.hostKeyLine, terminal);
  } catch (err) {
    ticket.cancel();
    ctx.sessions.disconnect(live);
    log.info({ err: (err as Error).message }, 'console session could not start');
    throw err;
  }
  session = new Session(ctx, device, login, shell.client, shell.channel, () => ctx.sessions.disconnect(live));
  const info = ticket.start(session.userSide, shell.channel, pipeBoth);
  if (info === null) {
    shell.client.end();
    ctx.sessions.disconnect(live);
    throw new FerryError('FERRY_PERMISSION_DENIED', `the relay ended ${principal.user}'s access while the console session to '${device}' was opening`);
  }
  session.id = info.id;
  log.info({ session: info.id }, 'console session started');
  return session;
}

/**
 * Logs in to the device's built-in server over `stream` with the relay's host key, checking
 * the device's host key against the one it enrolled with, and starts a shell on a PTY.
 */
function loginAndShell(ctx: RelayContext, stream: Duplex, device: string, username: string, hostKeyLine: string, terminal: ConsoleTerminal): Promise<{ client: ssh2.Client; channel: ClientChannel }> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    let settled = false;
    let wrongHostKey = false;
    const fail = (err: FerryError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      stream.destroy();
      reject(err);
    };
    // ssh2's readyTimeout covers the login, not the shell request after it.
    const timer = setTimeout(() => fail(new FerryError('FERRY_TIMEOUT', `device '${device}' did not start a console session within ${LIMITS.consoleHandshakeTimeoutMs} ms`)), LIMITS.consoleHandshakeTimeoutMs);
    client.on('error', (err: Error & { level?: string }) => {
      if (wrongHostKey) {
        // The channel reached an SSH server that is not the agent's built-in one: an agent with
        // --ssh-target sends it to the device's own sshd, which neither has the device's
        // enrolled host key nor knows the relay's key.
        fail(new FerryError('FERRY_CONNECT_FAILED', `device '${device}' has no console: its agent sends SSH to the device's own sshd (--ssh-target HOST:PORT), which the relay cannot log in to; reach it with 'ssh -J' instead, or run its agent with --ssh-target embedded`));
      } else if (err.level === 'client-authentication') {
        fail(new FerryError('FERRY_PERMISSION_DENIED', `device '${device}' refused the console login '${username}': its own copy of the access rules does not allow it (the device's report in the audit log, ssh.login.refused, says why), or its agent predates the console and must be upgraded`));
      } else {
        fail(new FerryError('FERRY_CONNECT_FAILED', `the console session to '${device}' failed: ${err.message}`, { cause: err }));
      }
    });
    client.once('close', () => fail(new FerryError('FERRY_CONNECT_FAILED', `device '${device}' closed the console connection before the shell started`)));
    client.once('ready', () => {
      client.shell({ cols: terminal.cols, rows: terminal.rows, width: 0, height: 0, term: terminal.term }, (err, channel) => {
        if (err) return fail(new FerryError('FERRY_CONNECT_FAILED', `device '${device}' refused the console's shell: ${err.message}`));
        if (settled) return channel.close();
        settled = true;
        clearTimeout(timer);
        resolve({ client, channel });
      });
    });
    client.connect({
      sock: stream as never,
      username,
      privateKey: ctx.hostPrivateKey,
      algorithms: SSH_ALGORITHMS as Algorithms,
      readyTimeout: LIMITS.consoleHandshakeTimeoutMs,
      hostVerifier: (key: Buffer) => {
        wrongHostKey = !sameKey(key, blobOf(hostKeyLine));
        return !wrongHostKey;
      },
    });
  });
}

/** The console session object: the user's side of the pipe to the shell's channel, and its events. */
class Session extends EventEmitter implements ConsoleSession {
  id = '';
  readonly output = new PassThrough();
  /**
   * The user's end, joined to the shell's channel by the tracker's pipe: what is pushed into
   * it goes to the shell; what the shell sends is written into it and so into `output`, whose
   * reader's pace holds the pipe (and through the channel's window, the device) back.
   */
  readonly userSide: Duplex;
  #ended = false;

  constructor(private readonly ctx: RelayContext, readonly device: string, readonly login: string, private readonly client: ssh2.Client, private readonly channel: ClientChannel, private readonly onGone: () => void) {
    super();
    const output = this.output;
    this.userSide = new Duplex({
      // Keystrokes are pushed by write(); the pipe to the channel takes them at the link's pace.
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (output.write(chunk)) cb();
        else output.once('drain', () => cb());
      },
      final(cb) { output.end(); cb(); },
      destroy(err, cb) { if (!output.writableEnded) output.end(); cb(err); },
    });
    channel.on('exit', (code: number | null, signal?: string) => this.emit('exit', typeof code === 'number' ? code : null, signal ?? null));
    channel.stderr.resume();
  }

  write(data: Uint8Array): boolean {
    if (this.#ended) return false;
    this.userSide.push(Buffer.from(data));
    return true;
  }

  get pendingInput(): number { return this.userSide.readableLength; }

  resize(cols: number, rows: number): void {
    const problem = terminalSizeProblem(cols, rows);
    if (problem) throw new FerryError('FERRY_USAGE', problem);
    if (!this.#ended) this.channel.setWindow(rows, cols, 0, 0);
  }

  close(): void {
    if (this.#ended) return;
    this.ctx.sessions.endReaches((r) => (r.id === this.id ? 'client closed' : null));
  }

  /** The tracker's word that the reach is over (its row is written): end the SSH connection and say why. */
  ended(why: ReachEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.client.end();
    this.onGone();
    this.emit('end', why);
  }
}

function remoteOf(p: Principal): string | null {
  return p.kind === 'local' ? null : p.remoteAddress;
}
