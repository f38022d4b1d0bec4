/**
 * The relay's one Fastify instance, with what every response gets whatever route answers it:
 * security headers, the body limit, the timeouts and the connection limit, and errors as JSON
 * with a stable code and never a stack trace. Each area (health, metrics, later the console
 * and its API) registers its routes on it from a file of its own.
 */
import { DEFAULT_CIPHERS, type Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { isFerryError, type FerryErrorCode } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { LIMITS } from '../../protocol/limits.ts';
import type { RelayConfig } from '../config.ts';
import { admitTlsHandshakes } from './tls-admission.ts';

/** What the app needs: its limits, the TLS pair (null: plain HTTP) and where to log failures. */
export interface HttpAppOptions {
  limits: Pick<RelayConfig, 'httpBodyLimitBytes' | 'httpHeadersTimeoutMs' | 'httpRequestTimeoutMs' | 'httpIdleTimeoutMs' | 'httpMaxConnections'> & { trustedProxies?: readonly string[]; maxConnections?: number };
  tls: { cert: string; key: string } | null;
  log: Logger;
}

/** The JSON body of every error response. */
export interface HttpErrorBody { error: { code: FerryErrorCode; message: string } }

/**
 * Strict for every response that is not a console page: an API answer or a metric rendered as
 * a document may load, frame or submit nothing. The console's pages (console-pages.ts) set
 * their own, which this hook keeps.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Sent over TLS only: a browser that honoured it over plain HTTP would refuse the proxy's later plain hops. */
const STRICT_TRANSPORT_SECURITY = 'max-age=31536000';

/**
 * Node's cipher list with AES-128-GCM moved to the front: OpenSSL servers pick by their own
 * order, which puts AES-256 first. Both are strong; the smaller key costs fewer rounds on
 * every byte of an agent's wss link and a terminal's output.
 */
const CIPHERS = ['TLS_AES_128_GCM_SHA256', ...DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256')].join(':');

/** Creates the Fastify instance (not listening yet) with the common hooks and handlers. */
export function createHttpApp(opts: HttpAppOptions): FastifyInstance {
  const { limits } = opts;
  // Node's own knobs, which Fastify passes on to http(s).createServer: slow headers, and how
  // often both timeouts are checked.
  const serverOptions = { headersTimeout: limits.httpHeadersTimeoutMs, requestTimeout: limits.httpRequestTimeoutMs, connectionsCheckingInterval: LIMITS.httpTimeoutCheckIntervalMs };
  const app = Fastify({
    ...(opts.tls ? { https: { ...serverOptions, cert: opts.tls.cert, key: opts.tls.key, ciphers: CIPHERS, handshakeTimeout: LIMITS.httpTlsHandshakeTimeoutMs } } : { http: serverOptions }),
    logger: false,
    bodyLimit: limits.httpBodyLimitBytes,
    requestTimeout: limits.httpRequestTimeoutMs,
    keepAliveTimeout: limits.httpIdleTimeoutMs,
    // Socket inactivity: a connection that moves nothing for the request timeout is gone.
    connectionTimeout: limits.httpRequestTimeoutMs,
    // On stop, idle kept-alive connections must not hold the relay open for their timeout.
    forceCloseConnections: true,
    return503OnClosing: true,
    // req.ip: X-Forwarded-For only from the reverse proxies named by --trusted-proxy (client-address.ts reads it the same way).
    trustProxy: limits.trustedProxies !== undefined && limits.trustedProxies.length > 0 ? [...limits.trustedProxies] : false,
    // Fastify types the instance by its server (http or https); the routes use neither's own API.
  }) as unknown as FastifyInstance;
  // Beyond this, Node refuses a connection at accept, before TLS costs anything. Agents' wss
  // links live on this listener too; the front door bounds those (maxConnections).
  app.server.maxConnections = limits.httpMaxConnections + (limits.maxConnections ?? 0);
  if (opts.tls) admitTlsHandshakes(app.server as unknown as TlsServer, { max: LIMITS.httpMaxTlsHandshakes, perAddress: LIMITS.httpTlsHandshakesPerAddress, evictAfterMs: LIMITS.httpTlsHandshakeEvictAfterMs });

  const secure = opts.tls !== null;
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    if (secure) reply.header('strict-transport-security', STRICT_TRANSPORT_SECURITY);
    return payload;
  });

  // Refused before a byte of the body is read, whichever route it is for (Fastify's own
  // bodyLimit applies only where a route parses a body, and only while reading it).
  app.addHook('onRequest', async (req, reply) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > limits.httpBodyLimitBytes) {
      reply.header('connection', 'close');
      return reply.code(413).send(errorBody('FERRY_TOO_LARGE', tooLarge(limits.httpBodyLimitBytes)));
    }
    return undefined;
  });

  app.setNotFoundHandler(async (req, reply) => reply.code(404).send(errorBody('FERRY_NOT_FOUND', `nothing at ${req.method} ${req.url.split('?')[0]}: see docs/operations.md for the relay's HTTP paths`)));

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const { status, body } = errorResponse(err, limits.httpBodyLimitBytes);
    if (status >= 500) opts.log.error({ err: err.message, stack: err.stack, method: req.method, url: req.url }, 'http request failed');
    return reply.code(status).send(body);
  });
  return app;
}

/** The status and JSON body for an error thrown while answering a request; internals stay in the log. */
export function errorResponse(err: FastifyError | Error, bodyLimit: number): { status: number; body: HttpErrorBody } {
  if (isFerryError(err)) return { status: FERRY_STATUS[err.code] ?? 400, body: errorBody(err.code, err.message) };
  const status = (err as FastifyError).statusCode ?? 500;
  if (status === 413) return { status, body: errorBody('FERRY_TOO_LARGE', tooLarge(bodyLimit)) };
  // Fastify's 4xx messages name the problem with the request (bad JSON, wrong content type) and nothing of the relay.
  if (status >= 400 && status < 500) return { status, body: errorBody('FERRY_USAGE', err.message) };
  return { status: 500, body: errorBody('FERRY_INTERNAL', "the relay failed to answer this request: the relay's log has the details") };
}

/** HTTP statuses of the FerryError codes that are not a plain bad request (400). */
const FERRY_STATUS: Partial<Record<FerryErrorCode, number>> = {
  FERRY_AUTH_REFUSED: 401,
  FERRY_PERMISSION_DENIED: 403,
  FERRY_NOT_FOUND: 404,
  FERRY_CONFLICT: 409,
  FERRY_TOO_LARGE: 413,
  FERRY_TIMEOUT: 504,
  FERRY_CONNECT_FAILED: 502,
  FERRY_STORE: 503,
  FERRY_INTERNAL: 500,
};

function errorBody(code: FerryErrorCode, message: string): HttpErrorBody {
  return { error: { code, message } };
}

function tooLarge(limit: number): string {
  return `the request body is larger than ${limit} bytes, the most the relay reads: send less`;
}
