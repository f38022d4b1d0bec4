/**
 * The relay's side of a browser terminal: one console session (console-session.ts) held
 * apart from the WebSocket that shows it, so that the socket may go and come back. The
 * holder numbers the output bytes, keeps those the browser has not acked (at most
 * `consoleUnackedBytes`; past that it stops reading the device's output, so the shell
 * blocks), records the session, and keeps it for `consoleResumeWindowMs` after its socket
 * went away without a close frame. A socket is a `TerminalPeer`: the WebSocket route
 * (http/terminal-routes.ts) adapts one; nothing here knows of HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { TimerHandle } from '../common/clock.ts';
import { FerryError, isFerryError, type FerryErrorCode } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { decodeClientFrame, encodeRelayFrame, MAX_TERMINAL_DATA, TERMINAL_FRAMES_VERSION, type RelayFrame } from '../protocol/terminal-frames.ts';
import { openConsoleSession, type ConsoleSession } from './console-session.ts';
import type { RelayContext } from './context.ts';
import type { Principal } from './principal.ts';
import { newRecordingId, startRecording, type LiveRecording } from './recordings.ts';
import type { ReachEndReason } from './sessions.ts';

/** The browser's end of a terminal as the holder sees it: a WebSocket, adapted by the route. */
export interface TerminalPeer {
  /** Sends one relay frame (one binary message). */
  send(frame: Uint8Array): void;
  /** Closes the connection once the frames sent before have gone out. */
  close(): void;
}

/** What the route hands back to the holder for an attached peer: its frames, and its going. */
export interface Attachment {
  /** One binary message from the peer. */
  frame(bytes: Uint8Array): void;
  /** The peer's connection closed (with or without a close frame before). */
  gone(): void;
}

/** What a new terminal asks for. */
export interface TerminalRequest { device: string; login: string; cols: number; rows: number; term: string }

/** The limits a holder runs with (RelayConfig carries them). */
interface TerminalLimits { consoleUnackedBytes: number; consoleInputQueueBytes: number; consoleResumeWindowMs: number; recordInput: boolean; consoleOutputBytesPerSecond: number }

/** The output rate is held to over slices this long: a burst of up to a slice's share passes at once. */
const RATE_SLICE_MS = 100;

/** Bytes in the resume id: 144 bits, so that one cannot be guessed (it is also bound to its user). */
const RESUME_ID_BYTES = 18;

/** Why output is not being read from the device now: the browser's acks, the recording's disk, or the output rate. */
type PauseReason = 'acks' | 'recording' | 'rate';

/** The frame that tells the browser why its session is over, or null when it closed it itself. */
function endFrame(device: string, why: ReachEndReason, exit: { code: number | null; signal: string | null } | null): RelayFrame | null {
  const error = (code: FerryErrorCode, message: string): RelayFrame => ({ type: 'error', code, message });
  if (why === 'device closed') return { type: 'exit', code: exit?.code ?? null, signal: exit?.signal ?? null };
  if (why === 'client closed') return null;
  if (why === 'link lost') return error('FERRY_CONNECT_FAILED', `device '${device}' went offline (its link to the relay was lost), so this session has ended; open a new terminal once it is back online`);
  if (why === 'idle timeout') return error('FERRY_TIMEOUT', 'this session moved no byte for longer than the relay allows (--session-idle-timeout) and was ended; open a new terminal');
  if (why === 'relay shutdown') return error('FERRY_CONNECT_FAILED', 'the relay is shutting down, so this session has ended; open a new terminal once it is back');
  return error('FERRY_PERMISSION_DENIED', `the relay ended this session: ${why}`);
}

/**
 * One browser terminal: the console session, its numbered output, its recording, and the
 * peer showing it now (if any). Output sequence numbers count bytes from the session's start.
 */
export class BrowserTerminal {
  /** The resume id the browser gets in `hello` and gives back in `?session=`. */
  readonly id = randomBytes(RESUME_ID_BYTES).toString('base64url');
  readonly user: string;
  readonly device: string;
  readonly #session: ConsoleSession;
  readonly #limits: TerminalLimits;
  readonly #clock: RelayContext['clock'];
  readonly #log: Logger;
  readonly #onDispose: (t: BrowserTerminal) => void;
  #recording: LiveRecording | null = null;
  /** Output not yet acked, in the order it came; the first starts at `#acked`. */
  #unacked: Buffer[] = [];
  #acked = 0;
  #nextSeq = 0;
  #peer: { peer: TerminalPeer; attachment: Attachment } | null = null;
  /** Output up to here went to the current peer; null while a resumed peer has not said (ack) where it is. */
  #sentTo: number | null = null;
  readonly #paused = new Set<PauseReason>();
  #exit: { code: number | null; signal: string | null } | null = null;
  #why: ReachEndReason | null = null;
  #outputDone = false;
  #resumeTimer: TimerHandle | null = null;
  #sliceStart = 0;
  #sliceBytes = 0;
  #rateTimer: TimerHandle | null = null;
  #detachedSince: number | null = null;
  #disposed = false;
  /** Resolves once the recording is closed and its row written (relay stop waits for it). */
  recordingEnded: Promise<void> = Promise.resolve();

  constructor(session: ConsoleSession, user: string, limits: TerminalLimits, ctx: Pick<RelayContext, 'clock' | 'log'>, onDispose: (t: BrowserTerminal) => void) {
    this.#session = session;
    this.user = user;
    this.device = session.device;
    this.#limits = limits;
    this.#clock = ctx.clock;
    this.#log = ctx.log.child({ user, device: session.device, session: session.id });
    this.#onDispose = onDispose;
    session.on('exit', (code: number | null, signal: string | null) => { this.#exit = { code, signal }; });
    session.on('end', (why: ReachEndReason) => {
      this.#why = why;
      this.#maybeFinish();
    });
  }

  /** The console session's id (its reach rows and SessionView). */
  get sessionId(): string { return this.#session.id; }

  /** The recording's id, once it runs. */
  get recordingId(): string | null { return this.#recording?.id ?? null; }

  /** Whether the holder is gone (the session is over and nobody will be shown the rest). */
  get ended(): boolean { return this.#disposed; }

  /** Why the session ended, once it has. */
  get endReason(): ReachEndReason | null { return this.#why; }

  /** Whether no peer shows the terminal now. */
  get detached(): boolean { return this.#peer === null; }

  /** Output bytes held for the browser now (what `consoleUnackedBytes` bounds). */
  get unackedBytes(): number { return this.#nextSeq - this.#acked; }

  /** Whether the device's output is held back now, and why. */
  get pausedBy(): readonly PauseReason[] { return [...this.#paused]; }

  /** Output bytes the session has produced so far. */
  get outputBytes(): number { return this.#nextSeq; }

  /** Starts recording and reading the output (the holder is built first, so that no 'exit' or 'end' is missed while the file is made). */
  begin(recording: LiveRecording): void {
    this.#recording = recording;
    if (this.#disposed) {
      this.recordingEnded = this.#endRecording();
      return;
    }
    const output = this.#session.output;
    output.on('data', (chunk: Buffer) => this.#output(chunk));
    const done = () => {
      this.#outputDone = true;
      this.#maybeFinish();
    };
    output.once('end', done);
    output.once('close', done);
  }

  /** The recorder's word that the disk is behind (pause the output) or has caught up. */
  recordingPressure(paused: boolean): void { this.#hold('recording', paused); }

  /**
   * Shows the terminal on `peer`: sends `hello`; a new session's output follows at once, a
   * resumed one's after the peer's first ack says where it is. A peer already attached is
   * told it was taken over and closed.
   */
  attach(peer: TerminalPeer, how: { resume: boolean }): Attachment {
    if (this.#disposed) throw new FerryError('FERRY_NOT_FOUND', 'this console session has ended; open a new terminal');
    const old = this.#peer;
    if (old) {
      this.#peer = null;
      old.peer.send(encodeRelayFrame({ type: 'error', code: 'FERRY_CONFLICT', message: 'this terminal was opened in another window, which took it over; reload this page to take it back' }));
      old.peer.close();
      this.#log.info('console terminal taken over by another window');
    }
    this.#resumeTimer?.cancel();
    this.#resumeTimer = null;
    if (this.#detachedSince !== null && how.resume) this.#log.info({ detachedMs: this.#clock.now() - this.#detachedSince }, 'console terminal resumed');
    this.#detachedSince = null;
    const attachment: Attachment = {
      frame: (bytes) => { if (this.#peer?.attachment === attachment) this.#frame(bytes); },
      gone: () => { if (this.#peer?.attachment === attachment) this.#detach(); },
    };
    this.#peer = { peer, attachment };
    this.#sentTo = how.resume ? null : this.#acked;
    peer.send(encodeRelayFrame({ type: 'hello', version: TERMINAL_FRAMES_VERSION, sessionId: this.id }));
    if (!how.resume) this.#catchUp();
    return attachment;
  }

  /** Ends the session now, as a close frame would (its reach.end says 'client closed'). */
  close(): void { this.#session.close(); }

  #frame(bytes: Uint8Array): void {
    const d = decodeClientFrame(bytes);
    if ('problem' in d) return this.#refusePeer('FERRY_USAGE', `the relay could not read a terminal frame: ${d.problem}`);
    const f = d.frame;
    switch (f.type) {
      case 'input':
        // Keystrokes after the end have nowhere to go (the end frame is on its way).
        if (this.#why !== null) return;
        // The socket is never paused for input: its acks must keep coming, or a paste whose
        // echo fills the unacked output would hold both directions still. Input that the
        // link has not taken is bounded instead.
        if (this.#session.pendingInput + f.data.length > this.#limits.consoleInputQueueBytes) {
          return this.#refusePeer('FERRY_TOO_LARGE', `more than ${this.#limits.consoleInputQueueBytes / 1024} KiB of typed or pasted input is waiting for the device: paste less at a time, or copy files with scp`);
        }
        this.#recording?.recorder.input(f.data);
        this.#session.write(f.data);
        return;
      case 'resize':
        this.#session.resize(f.cols, f.rows);
        this.#recording?.recorder.resize(f.cols, f.rows);
        return;
      case 'ack':
        return this.#ack(f.seq);
      case 'close':
        this.#session.close();
        return;
    }
  }

  #ack(seq: number): void {
    if (this.#sentTo === null) {
      // A resumed peer's first ack: the first byte it has not got. Everything before was acked by some socket, so it is gone from here.
      if (seq < this.#acked || seq > this.#nextSeq) {
        return this.#refusePeer('FERRY_STATE_INVALID', `the terminal asked to resume from byte ${seq}, but the relay holds output from byte ${this.#acked} to ${this.#nextSeq}; reload the page for a new terminal`);
      }
      this.#sentTo = seq;
    } else if (seq > this.#sentTo) {
      return this.#refusePeer('FERRY_USAGE', `the terminal acked output up to byte ${seq}, but the relay has sent only ${this.#sentTo}`);
    }
    this.#release(seq);
    this.#catchUp();
    this.#maybeFinish();
  }

  /** Drops the output before `seq` (the browser has it) and lets the device go on when below the cap. */
  #release(seq: number): void {
    while (this.#acked < seq) {
      const first = this.#unacked[0]!;
      const drop = Math.min(first.length, seq - this.#acked);
      if (drop === first.length) this.#unacked.shift();
      else this.#unacked[0] = first.subarray(drop);
      this.#acked += drop;
    }
    if (this.unackedBytes < this.#limits.consoleUnackedBytes) this.#hold('acks', false);
  }

  #output(chunk: Buffer): void {
    if (this.#disposed) return;
    this.#recording?.recorder.output(chunk);
    this.#unacked.push(chunk);
    this.#nextSeq += chunk.length;
    this.#catchUp();
    if (this.unackedBytes >= this.#limits.consoleUnackedBytes) this.#hold('acks', true);
    this.#meter(chunk.length);
  }

  /**
   * Holds the output to consoleOutputBytesPerSecond: past a slice's share, reading pauses
   * until the slice ends. A flood then costs the relay, the link and the device a bounded
   * share of their CPU, so that other sessions stay responsive; nobody reads faster anyway.
   */
  #meter(bytes: number): void {
    const rate = this.#limits.consoleOutputBytesPerSecond;
    if (rate <= 0) return;
    const now = this.#clock.now();
    if (now - this.#sliceStart >= RATE_SLICE_MS) {
      this.#sliceStart = now;
      this.#sliceBytes = 0;
    }
    this.#sliceBytes += bytes;
    if (this.#sliceBytes < rate * RATE_SLICE_MS / 1000 || this.#rateTimer !== null) return;
    this.#hold('rate', true);
    this.#rateTimer = this.#clock.setTimeout(() => {
      this.#rateTimer = null;
      this.#sliceStart = this.#clock.now();
      this.#sliceBytes = 0;
      this.#hold('rate', false);
    }, Math.max(1, this.#sliceStart + RATE_SLICE_MS - now));
  }

  /** Sends the current peer the output it has not got yet, in frames of at most MAX_TERMINAL_DATA bytes. */
  #catchUp(): void {
    const p = this.#peer;
    if (p === null || this.#sentTo === null || this.#sentTo >= this.#nextSeq) return;
    let seq = this.#acked;
    for (const chunk of this.#unacked) {
      const end = seq + chunk.length;
      for (let from = Math.max(seq, this.#sentTo); from < end; from += MAX_TERMINAL_DATA) {
        const data = chunk.subarray(from - seq, Math.min(end, from + MAX_TERMINAL_DATA) - seq);
        p.peer.send(encodeRelayFrame({ type: 'output', seq: from, data }));
      }
      seq = end;
    }
    this.#sentTo = this.#nextSeq;
  }

  #hold(reason: PauseReason, on: boolean): void {
    const before = this.#paused.size > 0;
    if (on) this.#paused.add(reason); else this.#paused.delete(reason);
    const after = this.#paused.size > 0;
    if (before === after) return;
    if (after) this.#session.output.pause(); else this.#session.output.resume();
  }

  /** A peer that broke the protocol gets an error frame and is closed; the session waits for a resume, as after any detach. */
  #refusePeer(code: FerryErrorCode, message: string): void {
    const p = this.#peer!;
    p.peer.send(encodeRelayFrame({ type: 'error', code, message }));
    p.peer.close();
    this.#log.warn({ problem: message }, 'closed a console terminal socket that broke the frame protocol');
    this.#detach();
  }

  #detach(): void {
    this.#peer = null;
    this.#sentTo = null;
    if (this.#disposed) return;
    this.#detachedSince = this.#clock.now();
    this.#log.info({ resumeWindowMs: this.#limits.consoleResumeWindowMs }, 'console terminal detached; kept for a resume');
    this.#armResumeWindow();
  }

  #armResumeWindow(): void {
    this.#resumeTimer?.cancel();
    this.#resumeTimer = this.#clock.setTimeout(() => {
      this.#resumeTimer = null;
      this.#log.info('console terminal not resumed within the window; ending it');
      // Ended already (the shell exited while detached): nobody came for the rest, so let it go.
      if (this.#why !== null) this.#dispose();
      else this.#session.close();
    }, this.#limits.consoleResumeWindowMs);
  }

  /**
   * Once the session is over and its output has all gone to a peer, that peer gets the
   * closing frame and the holder goes. A revocation or shutdown does not wait for the
   * output: it ends the session for the browser at once.
   */
  #maybeFinish(): void {
    const why = this.#why;
    if (why === null || this.#disposed) return;
    const now = why.startsWith('access revoked') || why === 'relay shutdown' || why === 'client closed';
    if (!now) {
      if (!this.#outputDone || this.#peer === null || this.#sentTo === null || this.#sentTo < this.#nextSeq) return;
    }
    const p = this.#peer;
    if (p) {
      const frame = endFrame(this.device, why, this.#exit);
      if (frame) p.peer.send(encodeRelayFrame(frame));
      p.peer.close();
    }
    this.#dispose();
  }

  #dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#peer = null;
    this.#resumeTimer?.cancel();
    this.#resumeTimer = null;
    this.#rateTimer?.cancel();
    this.#rateTimer = null;
    this.#unacked = [];
    // The shell ended or the window passed with the session over; in every other case close() ends it (a no-op when it is over).
    this.#session.close();
    this.recordingEnded = this.#endRecording();
    this.#onDispose(this);
  }

  async #endRecording(): Promise<void> {
    if (!this.#recording) return;
    try {
      const r = await this.#recording.end();
      this.#log.info({ recording: r.id, bytes: r.bytes }, 'console recording closed');
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'console recording could not be closed cleanly: it holds what was written before');
    }
  }
}

/** Totals for /metrics, summed when asked. */
export interface TerminalStats { live: number; detached: number; started: number; recordingBytes: number; outputHeld: number }

/** Every browser terminal of the relay: opens them, finds one to resume, counts them. */
export class ConsoleTerminals {
  readonly #ctx: RelayContext;
  readonly #terminals = new Map<string, BrowserTerminal>();
  readonly #recordingBytes = new Map<BrowserTerminal, number>();
  #endedRecordingBytes = 0;
  #started = 0;
  readonly #closing = new Set<Promise<void>>();

  constructor(ctx: RelayContext) { this.#ctx = ctx; }

  /**
   * Opens a console session for `principal` as the request says and starts its recording;
   * the caller attaches a peer. Rejects with the FerryError of the policy, the device or the
   * disk that refused it.
   */
  async open(principal: Principal, req: TerminalRequest): Promise<BrowserTerminal> {
    const ctx = this.#ctx;
    const recordingId = newRecordingId();
    const session = await openConsoleSession(ctx, principal, req.device, req.login, { cols: req.cols, rows: req.rows, term: req.term }, { recording: recordingId });
    const terminal = new BrowserTerminal(session, principal.user, ctx.config, ctx, (t) => this.#gone(t));
    this.#terminals.set(terminal.id, terminal);
    this.#started++;
    let recording: LiveRecording;
    try {
      recording = await startRecording({ store: ctx.store, dataDir: ctx.config.dataDir, clock: ctx.clock }, {
        id: recordingId, sessionId: session.id, device: req.device, user: principal.user, login: req.login,
        width: req.cols, height: req.rows, env: { TERM: req.term }, recordInput: ctx.config.recordInput,
      }, {
        onPressure: (paused) => terminal.recordingPressure(paused),
        onFlush: (written) => { if (this.#recordingBytes.has(terminal)) this.#recordingBytes.set(terminal, written.bytes); },
      });
    } catch (err) {
      // Every console session is recorded: one that cannot be is not run.
      terminal.close();
      throw isFerryError(err) ? err : new FerryError('FERRY_STORE', `the console session's recording could not start: ${(err as Error).message}`, { cause: err });
    }
    this.#recordingBytes.set(terminal, 0);
    terminal.begin(recording);
    if (terminal.ended) {
      // Revoked (or the relay stopping) while the recording's file was being made.
      await terminal.recordingEnded;
      const frame = terminal.endReason ?? 'client closed';
      throw new FerryError('FERRY_PERMISSION_DENIED', `the console session to '${req.device}' ended as it opened: ${frame}`);
    }
    return terminal;
  }

  /** The live terminal `id` of `principal`'s user, to attach again; FERRY_NOT_FOUND for an unknown, ended or someone else's id alike. */
  resume(principal: Principal, id: string): BrowserTerminal {
    const t = this.#terminals.get(id);
    if (!t || t.user !== principal.user) {
      throw new FerryError('FERRY_NOT_FOUND', `there is no console session '${id}' of yours to resume: it ended (its shell exited, or it stayed detached longer than --console-resume-window), or it is someone else's; open a new terminal`);
    }
    return t;
  }

  /** The live terminals now. */
  list(): BrowserTerminal[] { return [...this.#terminals.values()]; }

  /** Counts and totals for /metrics. */
  stats(): TerminalStats {
    let detached = 0;
    let outputHeld = 0;
    for (const t of this.#terminals.values()) {
      if (t.detached) detached++;
      if (t.pausedBy.length > 0) outputHeld++;
    }
    let recordingBytes = this.#endedRecordingBytes;
    for (const n of this.#recordingBytes.values()) recordingBytes += n;
    return { live: this.#terminals.size, detached, started: this.#started, recordingBytes, outputHeld };
  }

  /** Resolves once every recording of an ended terminal is closed (the relay waits for it before it closes the store). */
  async closed(): Promise<void> {
    await Promise.all([...this.#closing]);
  }

  #gone(t: BrowserTerminal): void {
    this.#terminals.delete(t.id);
    const p = t.recordingEnded.finally(() => {
      this.#closing.delete(p);
      this.#endedRecordingBytes += this.#recordingBytes.get(t) ?? 0;
      this.#recordingBytes.delete(t);
    });
    this.#closing.add(p);
  }
}
