/**
 * A browser-like HTTPS client of the console's API for tests: real requests to the relay,
 * trusting only its certificate, holding the session cookie, and sending Origin and the
 * CSRF header on state-changing requests the way the console's page does.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { selfSignedCertPath } from '../../src/relay/http/tls-cert.ts';
import type { Relay } from '../../src/relay/relay.ts';

/** One response; `json` is the parsed body (null when it is not JSON), read by tests as whatever shape the route returns. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test asserts the shape it reads
export interface WebReply { status: number; headers: IncomingHttpHeaders; text: string; json: any }

/** How one request departs from what the page would send. */
export interface WebRequestOptions {
  body?: unknown;
  /** A body sent as it is (with the content type the test sets), for bodies that are not JSON. */
  raw?: string;
  /** The Origin header: the console's by default on non-GET requests; null sends none. */
  origin?: string | null;
  /** The CSRF header: the session's by default on non-GET requests; null sends none. */
  csrf?: string | null;
  /** Send no cookie this time. */
  noCookie?: boolean;
  headers?: Record<string, string>;
}

/** A signed-in (or not yet) browser. */
export class WebClient {
  readonly base: URL;
  readonly #ca: string | null;
  /** The ferry_session cookie's value, once signed in. */
  cookie: string | null = null;
  /** The session's CSRF token, from the sign-in or /me. */
  csrf: string | null = null;
  /** The last Set-Cookie header for ferry_session, to check its flags. */
  setCookie: string | null = null;

  constructor(base: string, ca: string | null) {
    this.base = new URL(base);
    this.#ca = ca;
  }

  /** A client of `relay`'s HTTP listener, trusting its self-signed certificate. */
  static of(relay: Relay, dataDir: string): WebClient {
    if (!relay.http) throw new Error('the relay has no HTTP listener');
    return new WebClient(`${relay.http.tls ? 'https' : 'http'}://127.0.0.1:${relay.http.address.port}`, relay.http.tls ? readFileSync(selfSignedCertPath(dataDir), 'utf8') : null);
  }

  /** The console's origin as the page has it. */
  get origin(): string { return this.base.origin; }

  /** Signs in with a one-time URL (`…/login#TOKEN`) as the page does: POSTs the fragment. */
  async signIn(url: string, opts: WebRequestOptions = {}): Promise<WebReply> {
    const token = new URL(url).hash.slice(1);
    const r = await this.request('POST', '/api/v1/session', { body: { token }, csrf: null, ...opts });
    if (r.status === 200) this.csrf = r.json.csrf as string;
    return r;
  }

  /** Opens a server-sent event stream (GET `path`) and reads it as it comes. */
  stream(path: string): Promise<EventStream> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.cookie !== null) headers.cookie = `ferry_session=${this.cookie}`;
    const send = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send({ host: this.base.hostname, port: this.base.port, path, headers, agent: false, ...(this.#ca === null ? {} : { ca: this.#ca }) }, (res) => {
        resolve(new EventStream(res, () => req.destroy()));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** One request; keeps a ferry_session cookie the response sets. */
  request(method: string, path: string, opts: WebRequestOptions = {}): Promise<WebReply> {
    const changing = method !== 'GET' && method !== 'HEAD';
    const headers: Record<string, string> = { ...opts.headers };
    const origin = opts.origin === undefined ? (changing ? this.origin : null) : opts.origin;
    if (origin !== null) headers.origin = origin;
    const csrf = opts.csrf === undefined ? (changing ? this.csrf : null) : opts.csrf;
    if (csrf !== null) headers['x-ferry-csrf'] = csrf;
    if (this.cookie !== null && !opts.noCookie) headers.cookie = `ferry_session=${this.cookie}`;
    let payload: Buffer | undefined;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] = 'application/json';
    }
    if (opts.raw !== undefined) payload = Buffer.from(opts.raw);
    const send = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send({
        host: this.base.hostname, port: this.base.port, path, method, headers, agent: false,
        ...(this.#ca === null ? {} : { ca: this.#ca }),
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const m = /^ferry_session=([^;]*)/.exec(c);
            if (m) {
              this.setCookie = c;
              this.cookie = m[1] === '' ? null : m[1]!;
            }
          }
          let json: unknown = null;
          try { json = text === '' ? null : JSON.parse(text); } catch { /* not JSON: the test reads text */ }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}

/** One server-sent event. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test asserts the shape it reads
export interface ServerEvent { event: string; data: any }

/** A server-sent event stream being read: every event so far, and a way to wait for one. */
export class EventStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: ServerEvent[] = [];
  /** Bytes received so far, comments included. */
  bytes = 0;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  readonly #res: IncomingMessage;
  readonly #close: () => void;
  #buf = '';
  #waiters = new Set<() => void>();

  constructor(res: IncomingMessage, close: () => void) {
    this.#res = res;
    this.#close = close;
    this.status = res.statusCode!;
    this.headers = res.headers;
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      this.bytes += Buffer.byteLength(d);
      this.#buf += d;
      for (let i; (i = this.#buf.indexOf('\n\n')) >= 0;) {
        const block = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) this.events.push({ event, data: JSON.parse(data) });
      }
      for (const w of [...this.#waiters]) w();
    });
    this.ended = new Promise((resolve) => { res.once('end', resolve); res.once('close', resolve); res.once('error', () => resolve()); });
  }

  /** The first event (from `from` on) that `match` accepts, waiting up to `timeoutMs` for it. */
  next(match: (e: ServerEvent) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<ServerEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(match);
        if (found) { done(); resolve(found); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.#waiters.delete(check); };
      this.#waiters.add(check);
      check();
    });
  }

  /** Stops reading (the socket's buffers then fill up), or reads again. */
  pause(): void { this.#res.pause(); }
  resume(): void { this.#res.resume(); }

  /** Closes the stream from this side. */
  close(): void { this.#close(); }
}
