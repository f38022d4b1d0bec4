/**
 * The agent link's transport over a WebSocket: `wss://HOST[:PORT]/…/v1/agent` on the relay's
 * HTTPS listener, directly or through an HTTP proxy (CONNECT), for networks that let only
 * HTTPS out. The SSH handshake on top is the same as over TCP.
 *
 * TLS: with a pin (the token's `tlsPin`, for a relay with a self-signed certificate) the
 * certificate is not checked against CAs; its key must match the pin, and that is checked
 * when the upgrade answer arrives, before the stream exists, so no SSH byte goes to a relay
 * that does not hold the pinned key. Without a pin the system's CAs and the host name decide
 * (Node's defaults, SNI = the host).
 *
 * Every failure is a FerryError that says what to do; a proxy's password never appears in one.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { WebSocket } from 'ws';
import { FerryError } from '../common/errors.ts';
import { tlsPinOf } from '../common/tls-pin.ts';
import { redactUrl } from '../common/url-redaction.ts';
import { pinnedTlsContext, trustedContext } from './system-cas.ts';
import { LIMITS } from '../protocol/limits.ts';
import { formatRelayEndpoint, type RelayEndpoint } from '../protocol/relay-endpoint.ts';
import { VERSION } from '../protocol/version.ts';
import { markUnreachable, type Dialer } from './dialer.ts';
import { webSocketStream } from './ws-stream.ts';

/** A wss:// endpoint. */
export type WssEndpoint = Extract<RelayEndpoint, { transport: 'wss' }>;

/** What a WebSocket dialer needs besides the endpoint. */
export interface WebSocketDialerOptions {
  /** The pin of the relay's TLS key (`sha256//…`), or null to verify its certificate against the system's CAs. */
  tlsPin: string | null;
  /** An http:// proxy to CONNECT through (credentials, if any, in the URL's user:pass), or null. */
  proxy: URL | null;
  /** The stream pings this often (default LIMITS.linkWsPingIntervalMs). */
  pingIntervalMs?: number;
  /** Connect from this source address (the bench's simulated devices); default the system's choice. */
  localAddress?: string;
}

/** Error codes of a TCP connect (or DNS lookup) that found nothing: the peer is not there. */
const NOTHING_THERE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENETDOWN', 'EHOSTDOWN']);
/**
 * Something accepted the connection and then closed it: a relay over its TLS handshake bound
 * resets at accept (tls-admission.ts). Not "unreachable": retrying at once would be the storm
 * the bound is there to stop, so these take the usual backoff.
 */
const CLOSED_ON_US = new Set(['ECONNRESET', 'EPIPE']);

/** OpenSSL's codes for a certificate chain or name that failed verification. */
const CERT_PROBLEM = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID/;

/** The URL the WebSocket requests. */
function urlOf(e: WssEndpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `wss://${host}:${e.port}${e.path}`;
}

/** Throws a config problem unless `proxy` is an http:// URL with a host. */
export function checkProxyUrl(proxy: URL): void {
  if (proxy.protocol !== 'http:') {
    throw new FerryError('FERRY_CONFIG_INVALID', `the proxy ${redactUrl(proxy)} is ${proxy.protocol}//: the agent speaks only to HTTP proxies (CONNECT); write it as http://[user:pass@]HOST:PORT`);
  }
  if (proxy.hostname === '') throw new FerryError('FERRY_CONFIG_INVALID', `the proxy ${redactUrl(proxy)} names no host: write it as http://[user:pass@]HOST:PORT`);
}

/**
 * Dials `endpoint` over a WebSocket (no permessage-deflate, maxPayload
 * LIMITS.linkWsMaxMessageBytes); the stream is ws-stream.ts's, never half-open, pinging.
 * Throws at once (FERRY_CONFIG_INVALID) for a proxy URL that is not http://.
 */
export function webSocketDialer(endpoint: WssEndpoint, o: WebSocketDialerOptions): Dialer {
  if (o.proxy) checkProxyUrl(o.proxy);
  const url = urlOf(endpoint);
  const label = formatRelayEndpoint(endpoint);
  const proxyName = o.proxy ? redactUrl(o.proxy) : null;
  const via = proxyName ? ` (through the proxy ${proxyName})` : '';
  const target = `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  const pingIntervalMs = o.pingIntervalMs ?? LIMITS.linkWsPingIntervalMs;

  /** The proxy's answer to CONNECT, when it was not 200. */
  const proxyRefusal = (status: number): FerryError => {
    // 407 is the standard answer; some proxies (tinyproxy, to wrong credentials) send 401.
    if (status === 407 || status === 401) {
      const hasCredentials = o.proxy!.username !== '' || o.proxy!.password !== '';
      return new FerryError('FERRY_CONNECT_FAILED', hasCredentials
        ? `the proxy at ${proxyName} refused the credentials in the proxy URL (${status}): check the user and password in --proxy http://user:pass@host:port`
        : `the proxy at ${proxyName} wants credentials (${status}): give them in --proxy http://user:pass@host:port`);
    }
    if (status === 403) {
      return new FerryError('FERRY_CONNECT_FAILED', `the proxy at ${proxyName} refuses to connect to ${target} (403): its admin must allow CONNECT to that host and port`);
    }
    if (status === 502 || status === 503 || status === 504) {
      return markUnreachable(new FerryError('FERRY_CONNECT_FAILED', `the proxy at ${proxyName} could not reach the relay at ${target} (HTTP ${status})`));
    }
    return new FerryError('FERRY_CONNECT_FAILED', `the proxy at ${proxyName} answered HTTP ${status} to CONNECT ${target}`);
  };

  /** The relay's (or whatever is at the URL's) answer, when it was not an upgrade. */
  const relayRefusal = (res: IncomingMessage): FerryError => {
    const status = res.statusCode ?? 0;
    if (status === 404) return new FerryError('FERRY_CONNECT_FAILED', `no ferry relay link at that path: check the wss:// URL (${label}${via} answered 404)`);
    if (status === 503) {
      const after = res.headers['retry-after'];
      return new FerryError('FERRY_CONNECT_FAILED', `the relay at ${label} is busy; retrying (503${after ? `, Retry-After ${String(after)} s` : ''})`);
    }
    return new FerryError('FERRY_CONNECT_FAILED', `${label}${via} answered HTTP ${status} instead of a WebSocket upgrade: is it a ferry relay's HTTPS listener?`);
  };

  /** A transport or TLS error, in words. */
  const describe = (err: Error & { code?: string }, proxyAnswered: boolean, answered: boolean): FerryError => {
    const code = err.code ?? '';
    if (CERT_PROBLEM.test(code)) {
      return new FerryError('FERRY_CONNECT_FAILED', `the TLS certificate of ${endpoint.host} did not verify (${code}: ${err.message}): `
        + "give the relay a certificate from a CA this device trusts, or enrol with a token that pins the relay's certificate", { cause: err });
    }
    if (!answered && NOTHING_THERE.has(code)) {
      if (o.proxy && !proxyAnswered) return markUnreachable(new FerryError('FERRY_CONNECT_FAILED', `cannot reach the proxy at ${proxyName}: ${code}`, { cause: err }));
      return markUnreachable(new FerryError('FERRY_CONNECT_FAILED', `cannot reach the relay at ${label}${via}: ${code}`, { cause: err }));
    }
    if (CLOSED_ON_US.has(code)) {
      return new FerryError('FERRY_CONNECT_FAILED', `${o.proxy && !proxyAnswered ? `the proxy at ${proxyName}` : `the relay at ${label}${via}`} closed the connection before the WebSocket was up (${code}): it may be busy; retrying`, { cause: err });
    }
    return new FerryError('FERRY_CONNECT_FAILED', `the WebSocket to ${label}${via} failed: ${err.message}`, { cause: err });
  };

  return {
    label,
    dial(timeoutMs) {
      return new Promise((resolve, reject) => {
        let proxyStatus: number | null = null;
        let answered = false;
        let raw: Socket | null = null;
        const agent = o.proxy ? new HttpsProxyAgent(o.proxy, { keepAlive: false }) : undefined;
        agent?.on('proxyConnect', (res: { statusCode: number }) => { proxyStatus = res.statusCode; });
        const ws = new WebSocket(url, {
          perMessageDeflate: false,
          maxPayload: LIMITS.linkWsMaxMessageBytes,
          handshakeTimeout: timeoutMs,
          followRedirects: false,
          agent,
          // With a pin, the key decides (checked on 'upgrade'), not a CA.
          rejectUnauthorized: o.tlsPin === null,
          // One context per kind, made once (system-cas.ts); ws passes it on to tls.connect.
          ...{ secureContext: o.tlsPin === null ? trustedContext() : pinnedTlsContext() },
          headers: { 'User-Agent': `ferry-agent/${VERSION}` },
          ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        });
        let done = false;
        const fail = (err: FerryError) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          // The handshake's abort emits one more error; nothing listens for it but this.
          ws.on('error', () => {});
          ws.terminate();
          raw?.destroy();
          reject(err);
        };
        const timer = setTimeout(() => {
          const where = o.proxy && proxyStatus === null ? `the proxy at ${proxyName} did not answer` : `${label}${via} did not answer the WebSocket upgrade`;
          const err = new FerryError('FERRY_TIMEOUT', `${where} within ${timeoutMs} ms`);
          fail(answered ? err : markUnreachable(err));
        }, timeoutMs);
        ws.on('upgrade', (res: IncomingMessage) => {
          answered = true;
          const sock = res.socket as TLSSocket;
          raw = sock;
          sock.setNoDelay(true);
          if (o.tlsPin === null) return;
          const cert = sock.getPeerCertificate(true) as { raw?: Buffer } | null;
          const seen = cert?.raw ? tlsPinOf(cert.raw) : null;
          if (seen !== o.tlsPin) {
            fail(new FerryError('FERRY_TLS_PIN_MISMATCH', `the relay at ${label} presented TLS key ${seen ?? '(no certificate)'}, but this agent pinned ${o.tlsPin}: refusing to connect. `
              + "Someone may be intercepting the connection, or the relay's certificate was replaced with a new key; in the latter case enrol again with a new token."));
          }
        });
        ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
          res.resume();
          req.destroy();
          // A proxy's refusal of CONNECT is replayed as the response (https-proxy-agent): tell the two apart.
          if (proxyStatus !== null && proxyStatus !== 200) return fail(proxyRefusal(proxyStatus));
          answered = true;
          fail(relayRefusal(res));
        });
        const onError = (err: Error & { code?: string }) => {
          if (/handshake has timed out/.test(err.message)) {
            const e = new FerryError('FERRY_TIMEOUT', `${label}${via} did not answer the WebSocket upgrade within ${timeoutMs} ms`);
            return fail(answered ? e : markUnreachable(e));
          }
          fail(describe(err, proxyStatus !== null, answered));
        };
        ws.on('error', onError);
        ws.once('open', () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          ws.off('error', onError);
          resolve(webSocketStream(ws, { pingIntervalMs, maxMessageBytes: LIMITS.linkWsMaxMessageBytes, highWaterMark: LIMITS.socketBufferBytes }));
        });
      });
    },
  };
}
