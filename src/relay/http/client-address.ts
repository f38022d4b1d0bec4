/**
 * Who an HTTP request is from: the TCP peer, or, when that peer is a reverse proxy named by
 * --trusted-proxy, the nearest address in X-Forwarded-For that is not one of those proxies
 * (the same rule as Fastify's trustProxy, which the console's routes use: one library for
 * both). A client that is not behind a trusted proxy cannot choose the address that the
 * front door's limits and the audit log record.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/** The address reader for these trusted proxies (IPs or CIDR ranges, validated by the config). */
export function clientAddressReader(trustedProxies: readonly string[]): (req: IncomingMessage) => string {
  if (trustedProxies.length === 0) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trust = proxyAddr.compile([...trustedProxies]);
  return (req) => proxyAddr(req, trust);
}
