/**
 * A browser terminal's client side without a browser, for tests and the bench: signs in
 * through a one-time login URL as the console page does (POST /api/v1/session with the
 * fragment's token), and opens /api/v1/terminal over a real WebSocket (`ws`) with the
 * session cookie and the console's Origin, speaking the frames of terminal-frames.ts and
 * acking output as it arrives. The relay's certificate is self-signed, so it is not checked.
 */
import { request } from 'node:https';
import WebSocket from 'ws';
import { LIMITS } from '../../src/protocol/limits.ts';
import { decodeRelayFrame, encodeClientFrame, type ClientFrame, type RelayFrame } from '../../src/protocol/terminal-frames.ts';

/** An HTTPS request to the relay: status, headers and body. */
export interface HttpAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** Sends one request to `base` + `path` (self-signed certificate accepted). */
export function httpsRequest(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Signs in with the one-time URL that `ssh relay login` printed (anywhere in `printed`):
 * returns the `ferry_session=…` cookie to send.
 */
export async function signIn(base: string, printed: string): Promise<string> {
  const token = /\/login#([^\s]+)/.exec(printed)?.[1];
  if (!token) throw new Error(`no login URL in: ${printed}`);
  const r = await httpsRequest(base, '/api/v1/session', {
    method: 'POST', body: JSON.stringify({ token }),
    headers: { 'content-type': 'application/json', origin: new URL(base).origin },
  });
  if (r.status !== 200) throw new Error(`sign-in answered ${r.status}: ${r.body}`);
  const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const session = cookies.map((c) => c.split(';')[0]!).find((c) => c.startsWith('ferry_session='));
  if (!session) throw new Error(`sign-in set no ferry_session cookie: ${JSON.stringify(cookies)}`);
  return session;
}

/** How an upgrade request went when the relay refused it before the upgrade. */
export interface Refusal { status: number; body: string }

/**
 * Opens a terminal WebSocket at `base` with `query` (`device=…&login=…&cols=…&rows=…`, or
 * `session=ID`). Resolves once the socket is open, or with the HTTP answer that refused it.
 */
export function connectTerminal(base: string, query: string, opts: { cookie?: string; origin?: string | null; nextSeq?: number } = {}): Promise<TerminalClient | Refusal> {
  const url = new URL(`/api/v1/terminal?${query}`, base.replace(/^http/, 'ws'));
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  const origin = opts.origin === undefined ? new URL(base).origin : opts.origin;
  const ws = new WebSocket(url, { headers, origin: origin ?? undefined, rejectUnauthorized: false, perMessageDeflate: false });
  const client = new TerminalClient(ws, opts.nextSeq ?? 0);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

/** One terminal socket: what came (frames, output as text), a way to wait for it, and the frames to send. */
export class TerminalClient {
  readonly frames: RelayFrame[] = [];
  text = '';
  /** The next output byte expected: everything before it has arrived. */
  next: number;
  /** Ack output as it arrives (the console page does); off: a browser that stopped reading. */
  autoAck = true;
  closed = false;
  closeCode: number | null = null;
  /** Called with each output frame's bytes as it arrives (latency probes). */
  onOutput: ((data: Uint8Array) => void) | null = null;
  readonly ws: WebSocket;
  #acked: number;
  #decoder = new TextDecoder();
  #waiters = new Set<() => void>();

  constructor(ws: WebSocket, next: number) {
    this.ws = ws;
    this.next = next;
    this.#acked = next;
    ws.on('message', (data: Buffer) => this.#message(data));
    ws.on('close', (code) => { this.closed = true; this.closeCode = code; this.#wake(); });
  }

  /** The session id from hello, once it came. */
  get sessionId(): string | null {
    const hello = this.frames.find((f) => f.type === 'hello');
    return hello?.type === 'hello' ? hello.sessionId : null;
  }

  send(f: ClientFrame): void { this.ws.send(encodeClientFrame(f)); }
  type(s: string | Uint8Array): void { this.send({ type: 'input', data: typeof s === 'string' ? new TextEncoder().encode(s) : s }); }
  ack(): void {
    this.#acked = this.next;
    this.send({ type: 'ack', seq: this.next });
  }

  /** Drops the connection without a close frame, as a lost network would. */
  drop(): void { this.ws.terminate(); }

  until<T>(check: () => T | null | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const tryIt = () => {
        const v = check();
        if (v) { done(); resolve(v); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; frames: ${JSON.stringify(this.frames.filter((f) => f.type !== 'output'))}; output so far:\n${this.text.slice(-2000)}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.#waiters.delete(tryIt); };
      this.#waiters.add(tryIt);
      tryIt();
    });
  }

  untilText(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray> {
    return this.until(() => this.text.match(pattern), what, timeoutMs);
  }

  /** Waits until the shell takes input: keystrokes before the shell has set up its terminal may be dropped, so it asks again. */
  async shellReady(): Promise<void> {
    const timer = setInterval(() => this.type('echo rea""dy\r'), 500);
    this.type('echo rea""dy\r');
    try {
      await this.untilText(/^ready\r?$/m, 'the shell');
    } finally {
      clearInterval(timer);
    }
  }

  #message(data: Buffer): void {
    const d = decodeRelayFrame(data);
    if ('problem' in d) throw new Error(`the relay sent a frame the client cannot read: ${d.problem}`);
    const f = d.frame;
    if (f.type === 'output') {
      if (f.seq !== this.next) throw new Error(`output frame at ${f.seq}, expected ${this.next}: a gap or a repeat`);
      this.next += f.data.length;
      // The terminal's text is kept only while it is small enough to search (a flood would not be).
      if (this.text.length < 4 * 1024 * 1024) this.text += this.#decoder.decode(f.data, { stream: true });
      this.onOutput?.(f.data);
      // As the console page does: ack at least every consoleAckEveryBytes, and whatever a quiet terminal got.
      if (this.autoAck && (this.next - this.#acked >= LIMITS.consoleAckEveryBytes / 2 || f.data.length < 1024)) this.ack();
    } else {
      this.frames.push(f);
    }
    this.#wake();
  }

  #wake(): void { for (const w of [...this.#waiters]) w(); }
}
