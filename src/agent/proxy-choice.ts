/**
 * Which HTTP proxy (if any) the agent's link to one relay endpoint goes through. Pure: the
 * CLI reads the environment and passes what it found.
 *
 * - Only wss:// endpoints use a proxy. A TCP endpoint (HOST:PORT, SSH) is always dialled
 *   directly: an HTTP proxy carries HTTPS, and a network that needs one for HTTPS is the
 *   reason the wss endpoint exists.
 * - `--proxy` (FERRY_PROXY) wins, and applies to every wss endpoint: it is an explicit
 *   choice, so NO_PROXY does not override it.
 * - Otherwise `https_proxy`, then `HTTPS_PROXY` (the lower-case name first, as curl reads
 *   them), honouring `no_proxy`/`NO_PROXY`.
 * - `ALL_PROXY` is not read: it usually names a SOCKS proxy, which the agent cannot use, and
 *   honouring it would break a device that works today. Pass such a proxy with --proxy if it
 *   is an HTTP one.
 * - A proxy without a scheme (`proxy:3128`) is read as http://, as curl does.
 *
 * NO_PROXY entries (comma or space separated, case-insensitive): `*` (no proxy at all); a host
 * or domain, with or without a leading `.` or `*.`, matching the name and every name below
 * it; `HOST:PORT`, matching that port only; IP literals (IPv6 with or without brackets),
 * matched exactly. CIDR ranges are not read (ignored).
 */
import type { RelayEndpoint } from '../protocol/relay-endpoint.ts';

/** What the agent knows about proxies: the flag and the environment variables, as given (null: unset). */
export interface ProxySettings {
  /** --proxy or FERRY_PROXY. */
  flag: string | null;
  /** `https_proxy`, else `HTTPS_PROXY`. */
  httpsProxy: string | null;
  /** `no_proxy`, else `NO_PROXY`. */
  noProxy: string | null;
}

/** A proxy to use, and where it was set (for messages: "--proxy", "HTTPS_PROXY"). */
export interface ProxyChoice { url: URL; from: '--proxy' | 'HTTPS_PROXY' }

/** The settings as the environment states them (empty values are unset). */
export function proxySettingsFrom(flag: string | null, env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const pick = (...names: string[]) => {
    for (const n of names) {
      const v = env[n]?.trim();
      if (v) return v;
    }
    return null;
  };
  return { flag: flag?.trim() || null, httpsProxy: pick('https_proxy', 'HTTPS_PROXY'), noProxy: pick('no_proxy', 'NO_PROXY') };
}

/** Reads a proxy setting as a URL (http:// assumed when no scheme is given); null when it is no URL at all. */
export function parseProxyUrl(text: string): URL | null {
  const t = text.trim();
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(t) ? t : `http://${t}`);
  } catch {
    return null;
  }
}

/** A problem with a proxy setting, in words that never repeat its password; null when it is usable. */
export function proxyProblem(text: string, from: string): string | null {
  const url = parseProxyUrl(text);
  if (url === null || url.hostname === '') return `${from} is not a proxy URL: write it as http://[user:pass@]HOST:PORT`;
  if (url.protocol !== 'http:') return `${from} is a ${url.protocol}// proxy: the agent speaks only to HTTP proxies (CONNECT); write it as http://[user:pass@]HOST:PORT`;
  return null;
}

function unbracket(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}

/** True when one NO_PROXY entry covers host:port. */
function entryMatches(entry: string, host: string, port: number): boolean {
  let e = entry.trim().toLowerCase();
  if (e === '') return false;
  if (e === '*') return true;
  let entryPort: number | null = null;
  // HOST:PORT or [V6]:PORT; a bare IPv6 literal has several colons and no port.
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(e);
  if (withPort) {
    e = withPort[1]!;
    entryPort = Number(withPort[2]);
  }
  if (entryPort !== null && entryPort !== port) return false;
  e = unbracket(e);
  if (e.startsWith('*.')) e = e.slice(1);
  if (e.startsWith('.')) e = e.slice(1);
  if (e === '') return false;
  // IP literals match only themselves; names match themselves and every name below them.
  const isIp = (t: string) => t.includes(':') || /^[\d.]+$/.test(t);
  return host === e || (!isIp(e) && !isIp(host) && host.endsWith(`.${e}`));
}

/** True when NO_PROXY (as given) says host:port is reached directly. */
export function bypassesProxy(noProxy: string | null, host: string, port: number): boolean {
  if (noProxy === null) return false;
  const h = unbracket(host).replace(/\.$/, '');
  return noProxy.split(/[\s,]+/).some((entry) => entryMatches(entry, h, port));
}

/**
 * The proxy `endpoint` goes through, or null for a direct connection, or a problem with the
 * setting that applies (never echoing a password).
 */
export function proxyFor(endpoint: RelayEndpoint, s: ProxySettings): ProxyChoice | null | { problem: string } {
  if (endpoint.transport !== 'wss') return null;
  if (s.flag !== null) {
    const problem = proxyProblem(s.flag, '--proxy');
    return problem ? { problem } : { url: parseProxyUrl(s.flag)!, from: '--proxy' };
  }
  if (s.httpsProxy === null || bypassesProxy(s.noProxy, endpoint.host, endpoint.port)) return null;
  const problem = proxyProblem(s.httpsProxy, 'HTTPS_PROXY');
  return problem ? { problem } : { url: parseProxyUrl(s.httpsProxy)!, from: 'HTTPS_PROXY' };
}
