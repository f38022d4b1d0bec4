/**
 * The browser's end of a console terminal: one session over GET /api/v1/terminal, a WebSocket
 * of binary frames (protocol/terminal-frames.ts). It numbers the output it has, acks it as the
 * terminal has drawn it (the relay holds back what is not acked, which is the flow control),
 * and when the socket drops it reconnects with `?session=ID` and acks the first byte it lacks,
 * so the relay sends every byte from there. No DOM but WebSocket: the page draws.
 */
import { decodeRelayFrame, encodeClientFrame, MAX_TERMINAL_DATA, TERMINAL_FRAMES_VERSION, type RelayFrame } from '../protocol/terminal-frames.ts';

/** Where a link is; `ended`, `failed` and `closed` are final. */
export type LinkState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open'; sessionId: string }
  | { kind: 'reconnecting'; attempt: number; inMs: number }
  | { kind: 'ended'; code: number | null; signal: string | null }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'closed' };

/** What a link needs: a new session (`device`, `login`, size) or one to resume (`sessionId`, `seq`), and what to call. */
export interface LinkOptions {
  device: string;
  login: string | null;
  sessionId: string | null;
  /** The first output byte not yet drawn (0 for a new session). */
  seq: number;
  cols: number;
  rows: number;
  /** Output to draw; call `drawn` when it is, so that it is acked. */
  output(data: Uint8Array, drawn: () => void): void;
  state(s: LinkState): void;
  /** The relay named the session (first hello): keep the id where a reload finds it. */
  session(id: string): void;
  /** The acked position moved (for the page to keep across a reload). */
  acked?(seq: number): void;
  /**
   * Asked when a resume is refused before the upgrade (the browser learns no status): 'gone'
   * when the relay answers otherwise (so it no longer holds the session), 'retry' when it
   * cannot be reached either.
   */
  probe?(): Promise<'gone' | 'retry'>;
}

/** Acks go out once this much is drawn since the last one, and at the latest after ACK_DELAY_MS (the contract asks for at least every 64 KiB). */
export const ACK_EVERY_BYTES = 16 * 1024;
const ACK_DELAY_MS = 50;
/** Reconnect backoff: first delay and ceiling (jittered over the upper half). */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 10_000;
/** Socket closes in a row without a hello before the link gives up (the relay refuses the upgrade itself: not signed in, wrong origin). */
const MAX_FAILED_OPENS = 6;

/** A terminal session's link; `close()` ends the session, `dispose()` only drops the socket (the relay keeps the session for its resume window). */
export class TerminalLink {
  private ws: WebSocket | null = null;
  private sessionId: string | null;
  private received: number;
  private drawnUpTo: number;
  private ackedUpTo: number;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private failedOpens = 0;
  private final = false;
  private size: { cols: number; rows: number };

  constructor(private readonly opts: LinkOptions) {
    this.sessionId = opts.sessionId;
    this.received = opts.seq;
    this.drawnUpTo = opts.seq;
    this.ackedUpTo = opts.seq;
    this.size = { cols: opts.cols, rows: opts.rows };
    this.connect();
  }

  /** The first output byte not received yet. */
  get seq(): number {
    return this.received;
  }

  /** Sends keystrokes or pasted text (as UTF-8 bytes), cut to frame size. */
  input(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; at += MAX_TERMINAL_DATA) this.send(encodeClientFrame({ type: 'input', data: bytes.subarray(at, at + MAX_TERMINAL_DATA) }));
  }

  /** The terminal's new size; sent now, and again after a reconnect. */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.send(encodeClientFrame({ type: 'resize', cols, rows }));
  }

  /** Ends the session on the device at once (a `close` frame), then the socket. */
  close(): void {
    if (this.final) return;
    this.send(encodeClientFrame({ type: 'close' }));
    this.finish({ kind: 'closed' });
  }

  /** Drops the socket and stops reconnecting, leaving the session to the relay's resume window (leaving the page). */
  dispose(): void {
    this.final = true;
    this.stopTimers();
    this.ws?.close();
    this.ws = null;
  }

  private url(): string {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams();
    if (this.sessionId !== null) q.set('session', this.sessionId);
    else {
      q.set('device', this.opts.device);
      q.set('login', this.opts.login ?? '');
      q.set('cols', String(this.size.cols));
      q.set('rows', String(this.size.rows));
    }
    return `${scheme}//${location.host}/api/v1/terminal?${q.toString()}`;
  }

  private connect(): void {
    this.attempt++;
    this.opts.state({ kind: 'connecting', attempt: this.attempt });
    const ws = new WebSocket(this.url());
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let hello = false;
    ws.onmessage = (e: MessageEvent) => {
      if (this.ws !== ws || !(e.data instanceof ArrayBuffer)) return;
      const d = decodeRelayFrame(new Uint8Array(e.data));
      if ('problem' in d) return this.finish({ kind: 'failed', code: 'FERRY_PROTOCOL', message: `the relay sent a frame this page cannot read (${d.problem}): reload the page` });
      if (d.frame.type === 'hello') hello = true;
      this.frame(d.frame);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.final) return;
      // Never named a session: the relay refused the upgrade (sign-in, origin) or cannot be
      // reached. Retrying would open another session each time, so a new one is given up at once.
      if (!hello) this.failedOpens++;
      if (this.sessionId === null || this.failedOpens >= MAX_FAILED_OPENS) {
        return this.finish({ kind: 'failed', code: 'FERRY_CONNECT_FAILED', message: this.sessionId === null ? 'the relay refused or dropped the terminal connection before the session started: check that you are still signed in, and try again' : 'the relay stopped answering this terminal: it may be down, or your sign-in ended' });
      }
      if (hello || this.opts.probe === undefined) return this.retry();
      // Refused before the upgrade: the relay does not know the session (any more), or it is down.
      this.opts.state({ kind: 'connecting', attempt: this.attempt });
      void this.opts.probe().then((answer) => {
        if (this.final) return;
        if (answer === 'gone') this.finish({ kind: 'failed', code: 'FERRY_NOT_FOUND', message: 'this terminal session is over: it ended, or it was left longer than the relay keeps a session for a reconnect' });
        else this.retry();
      });
    };
  }

  private retry(): void {
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.attempt, 16));
    const inMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.opts.state({ kind: 'reconnecting', attempt: this.attempt, inMs });
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.connect(); }, inMs);
  }

  private frame(f: RelayFrame): void {
    switch (f.type) {
      case 'hello': {
        if (f.version !== TERMINAL_FRAMES_VERSION) return this.finish({ kind: 'failed', code: 'FERRY_PROTOCOL', message: `the relay speaks terminal frames version ${f.version}, this page ${TERMINAL_FRAMES_VERSION}: reload the page` });
        const resumed = this.sessionId !== null;
        this.sessionId = f.sessionId;
        this.attempt = 0;
        this.failedOpens = 0;
        if (!resumed) this.opts.session(f.sessionId);
        else {
          // From here the relay sends every byte this page does not have (bytes still queued
          // for drawing count as had), and learns the size the window has now.
          this.send(encodeClientFrame({ type: 'ack', seq: this.received }));
          this.send(encodeClientFrame({ type: 'resize', ...this.size }));
        }
        this.opts.state({ kind: 'open', sessionId: f.sessionId });
        return;
      }
      case 'output': {
        const end = f.seq + f.data.length;
        if (end <= this.received) return; // Sent again after a resume: drawn already.
        if (f.seq > this.received) {
          return this.finish({ kind: 'failed', code: 'FERRY_PROTOCOL', message: `the relay sent output from byte ${f.seq} but byte ${this.received} was next: reload the page to resume` });
        }
        const fresh = f.data.subarray(this.received - f.seq);
        this.received = end;
        this.opts.output(fresh, () => this.drawn(end));
        return;
      }
      case 'exit':
        return this.finish({ kind: 'ended', code: f.code, signal: f.signal });
      case 'error':
        return this.finish({ kind: 'failed', code: f.code, message: f.message });
    }
  }

  private drawn(end: number): void {
    if (end <= this.drawnUpTo) return;
    this.drawnUpTo = end;
    if (this.drawnUpTo - this.ackedUpTo >= ACK_EVERY_BYTES) this.ack();
    else this.ackTimer ??= setTimeout(() => this.ack(), ACK_DELAY_MS);
  }

  private ack(): void {
    if (this.ackTimer !== null) { clearTimeout(this.ackTimer); this.ackTimer = null; }
    if (this.drawnUpTo === this.ackedUpTo || this.ws?.readyState !== WebSocket.OPEN) return;
    this.ackedUpTo = this.drawnUpTo;
    this.send(encodeClientFrame({ type: 'ack', seq: this.ackedUpTo }));
    this.opts.acked?.(this.ackedUpTo);
  }

  private send(bytes: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private finish(s: LinkState): void {
    if (this.final) return;
    this.final = true;
    this.stopTimers();
    this.opts.state(s);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
  }

  private stopTimers(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.ackTimer = this.retryTimer = null;
  }
}
