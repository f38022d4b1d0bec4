/** The relay's HTTP(S) listener: its certificate, the one Fastify app with every area's routes, and the URL operators open. */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { FerryError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { ListenAddress, RelayConfig } from '../config.ts';
import type { RelayContext } from '../context.ts';
import { tlsPinOf } from '../../common/tls-pin.ts';
import { registerAgentLinkRoute, type AgentLinkDoor } from './agent-link-route.ts';
import { clientAddressReader } from './client-address.ts';
import { registerConsolePages } from './console-pages.ts';
import { registerApiRoutes } from './api-routes.ts';
import { registerHealthRoutes } from './health-routes.ts';
import { createMetricsRegistry, registerMetricsRoutes } from './metrics-routes.ts';
import { createHttpApp } from './server.ts';
import type { RelaySources } from './sources.ts';
import { registerTerminalRoutes } from './terminal-routes.ts';
import { originAllowed, registerWebAuth, webPrincipal, type ConsoleUrls } from './web-auth.ts';
import { loadGivenCert, loadOrCreateSelfSigned, type TlsMaterial } from './tls-cert.ts';

/** A listening HTTP(S) server. */
export interface HttpListener {
  readonly address: ListenAddress;
  /** What operators open: --public-url, or http(s)://HOST:PORT. */
  readonly url: string;
  readonly tls: boolean;
  /** SHA-256 of the certificate (AB:CD:…), as a browser shows it; null over plain HTTP. */
  readonly certFingerprint: string | null;
  /**
   * The pin of the certificate's key (common/tls-pin.ts) when the relay made it itself: agents
   * that link over wss:// check it instead of the system's CAs. Null for a given certificate
   * (checked against the CAs) and over plain HTTP (the TLS proxy in front has its own).
   */
  readonly selfSignedPin: string | null;
  /** The app, for areas that add routes before the listener starts (and for tests). */
  readonly app: FastifyInstance;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** Where the listener runs and what it reads; `publicHost` is the host part of the relay's public address. */
export interface HttpListenerOptions {
  config: Readonly<RelayConfig> & { httpListen: ListenAddress };
  publicHost: string;
  sources: RelaySources;
  /** The running relay, for the console's API and terminal, which act through its operations and policy. */
  ctx: RelayContext;
  /** The SSH front door, which takes the agent links that arrive as WebSockets. */
  door: AgentLinkDoor;
  log: Logger;
}

/** Loads or makes the certificate, registers every area's routes and listens; throws FERRY_CONFIG_INVALID when it cannot. */
export async function startHttpListener(opts: HttpListenerOptions): Promise<HttpListener> {
  const { config, log } = opts;
  const sanHost = config.publicUrl === null ? opts.publicHost : new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, '');
  let tls: TlsMaterial | null = null;
  let selfSignedPin: string | null = null;
  if (!config.httpPlain) {
    const given = config.tlsCertFile !== null && config.tlsKeyFile !== null;
    tls = given ? loadGivenCert(config.tlsCertFile!, config.tlsKeyFile!) : loadOrCreateSelfSigned(config.dataDir, sanHost);
    if (!given) selfSignedPin = tlsPinOf(tls.cert);
    if (tls.created) log.info({ fingerprint: tls.fingerprint }, 'created a self-signed https certificate');
  }
  const app = createHttpApp({ limits: config, tls, log });
  registerHealthRoutes(app, opts.sources);
  registerMetricsRoutes(app, createMetricsRegistry(opts.sources));
  // The web console's areas (each in its own file): sign-in and sessions, the API, the terminal, the pages.
  await registerConsolePages(app, { log });
  // Their URL is known once the port is bound, below; they read it only when a request comes.
  const consoleUrls: ConsoleUrls = { url: '', tls: tls !== null };
  registerWebAuth(app, opts.ctx, consoleUrls);
  registerApiRoutes(app, opts.ctx);
  registerTerminalRoutes(app, opts.ctx, { webPrincipal, originAllowed });
  registerAgentLinkRoute(app, opts.door, clientAddressReader(config.trustedProxies));
  const { host, port } = config.httpListen;
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    throw new FerryError('FERRY_CONFIG_INVALID', `cannot listen for HTTP on ${host}:${port}: ${(err as Error).message} (choose another --http-listen, or --http-listen off)`, { cause: err });
  }
  const bound = app.server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const shown = opts.publicHost.includes(':') ? `[${opts.publicHost}]` : opts.publicHost;
  const url = (config.publicUrl ?? `${tls ? 'https' : 'http'}://${shown}:${address.port}`).replace(/\/$/, '');
  consoleUrls.url = url;
  log.info({ address: `${address.host}:${address.port}`, url, tls: tls !== null }, 'http listening');
  if (!tls) {
    log.warn({ address: `${address.host}:${address.port}` }, 'serving plain HTTP (--http-plain): this must sit behind a TLS reverse proxy, and --public-url should name the proxy\'s https:// address');
  }
  return {
    address, url, tls: tls !== null, certFingerprint: tls?.fingerprint ?? null, selfSignedPin, app,
    close: () => app.close(),
  };
}
