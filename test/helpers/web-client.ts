/**
 * A browser-like HTTPS client of the console's API for tests: real requests to the relay,
 * trusting only its certificate, holding the session cookie, and sending Origin and the
 * CSRF header on state-changing requests the way the console's page does.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { selfSignedCertPath } from '../../src/relay/http/tls-cert.ts';
import type { Relay } from '../../src/relay/relay.ts';

/** One response; `json` is the parsed body (null when it is not JSON), read by tests as whatever shape the route returns. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test asserts the shape it reads
export interface WebReply { status: number; headers: IncomingHttpHeaders; text: string; json: any }

/** How one request departs from what the page would send. */
export interface WebRequestOptions {
  body?: unknown;
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
