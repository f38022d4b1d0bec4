/**
 * Where an agent dials its relay: `HOST:PORT` (SSH over TCP) or `wss://HOST[:PORT][/BASE/]`
 * (the same SSH link inside a WebSocket, on the relay's HTTPS listener, at BASE + `v1/agent`;
 * `https://` is read as `wss://`). The one parser for flags, tokens and the agent's state.
 * Pure; runs in Node and in the browser.
 */
import { parseHostPort } from './host-port.ts';

/** The path of the agent link on the relay's HTTPS listener. */
export const AGENT_LINK_PATH = '/v1/agent';

/** The port of a wss:// endpoint that names none. */
const WSS_DEFAULT_PORT = 443;

/** One endpoint. `path` is the full request path of the WebSocket (BASE + `v1/agent`). */
export type RelayEndpoint =
  | { transport: 'tcp'; host: string; port: number }
  | { transport: 'wss'; host: string; port: number; path: string };

/** The most endpoints one list may hold: an agent tries them in turn. */
export const MAX_RELAY_ENDPOINTS = 8;

/** A host name (underscores too: container and service names have them), IPv4, or a bracketed IPv6 literal with an optional zone. */
const HOST = /^(?:\[[0-9a-fA-F:.]+(?:%[\w.-]+)?\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))$/;

/** Reads one endpoint, or says what is wrong with it (in words for the user). */
export function parseRelayEndpoint(text: string): RelayEndpoint | { problem: string } {
  const t = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(t)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    const hp = parseHostPort(t);
    if (hp === null || !HOST.test(hp.host.includes(':') ? `[${hp.host}]` : hp.host)) {
      return { problem: `relay endpoint '${t}' must be HOST:PORT (SSH) or wss://HOST[:PORT]/ (WebSocket)` };
    }
    return { transport: 'tcp', ...hp };
  }
  if (scheme === 'ws' || scheme === 'http') {
    return { problem: `relay endpoint '${t}' is plain ${scheme}://: the agent links only over TLS; use wss:// (or https://)` };
  }
  if (scheme === 'ssh') {
    const rest = t.slice('ssh://'.length).replace(/\/$/, '');
    const e = parseRelayEndpoint(rest);
    return 'problem' in e || e.transport !== 'tcp' ? { problem: `relay endpoint '${t}' must be ssh://HOST:PORT` } : e;
  }
  if (scheme !== 'wss' && scheme !== 'https') {
    return { problem: `relay endpoint '${t}' has scheme ${scheme}://; use HOST:PORT (SSH) or wss://HOST[:PORT]/ (WebSocket)` };
  }
  let url: URL;
  try {
    url = new URL(`https://${t.slice(scheme.length + 3)}`);
  } catch {
    return { problem: `relay endpoint '${t}' is not a valid URL: write it as wss://HOST[:PORT]/` };
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    // Not repeated back whole: what is before the @ may be a password.
    return { problem: `relay endpoint '${scheme}://${url.host}${url.pathname}' carries a user, query or fragment: write it as wss://HOST[:PORT]/` };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!HOST.test(url.hostname)) return { problem: `relay endpoint '${t}' has no valid host name` };
  const port = url.port === '' ? WSS_DEFAULT_PORT : Number(url.port);
  // The URL names the relay (or the prefix a reverse proxy serves it under); the link is below it.
  const base = url.pathname.endsWith(AGENT_LINK_PATH) ? url.pathname.slice(0, -AGENT_LINK_PATH.length) : url.pathname.replace(/\/$/, '');
  return { transport: 'wss', host, port, path: `${base}${AGENT_LINK_PATH}` };
}

/** Reads a comma-separated list (as --relay and FERRY_RELAY take it), in order, without duplicates. */
export function parseRelayEndpoints(text: string): RelayEndpoint[] | { problem: string } {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) return { problem: 'no relay endpoint given: write HOST:PORT or wss://HOST/, several separated by commas' };
  if (parts.length > MAX_RELAY_ENDPOINTS) return { problem: `${parts.length} relay endpoints given; at most ${MAX_RELAY_ENDPOINTS}` };
  const out: RelayEndpoint[] = [];
  for (const p of parts) {
    const e = parseRelayEndpoint(p);
    if ('problem' in e) return e;
    if (!out.some((o) => formatRelayEndpoint(o) === formatRelayEndpoint(e))) out.push(e);
  }
  return out;
}

/** The endpoint as the parser reads it back: `HOST:PORT` or `wss://HOST:PORT/PATH`. */
export function formatRelayEndpoint(e: RelayEndpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return e.transport === 'tcp' ? `${host}:${e.port}` : `wss://${host}${e.port === WSS_DEFAULT_PORT ? '' : `:${e.port}`}${e.path}`;
}

/** The wss:// endpoint of a relay whose HTTPS listener (console) is at `consoleUrl` (https://HOST[:PORT][/BASE]). */
export function agentEndpointOf(consoleUrl: string): RelayEndpoint | null {
  if (!/^https:\/\//i.test(consoleUrl)) return null;
  const e = parseRelayEndpoint(consoleUrl.replace(/\/?$/, '/'));
  return 'problem' in e ? null : e;
}
