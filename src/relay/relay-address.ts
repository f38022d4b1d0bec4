/**
 * The relay's public address (HOST:PORT, as tokens carry it) taken apart, and the ssh
 * command lines that hints print with it, so that a hint names the relay the operator
 * is actually using. Pure.
 */
import { parseHostPort } from '../protocol/host-port.ts';
import { agentEndpointOf, formatRelayEndpoint } from '../protocol/relay-endpoint.ts';

/** HOST and PORT of `publicAddress` (`[v6]:PORT` unbracketed); port 22 when none is given. */
export function relayHostPort(publicAddress: string): { host: string; port: number } {
  return parseHostPort(publicAddress) ?? { host: publicAddress, port: 22 };
}

/**
 * `ssh -p PORT USER@HOST`: the start of a relay command line for `user` (no `-p` for port 22).
 * An empty address (a local command before the relay ever started) gives placeholders.
 */
export function relaySsh(publicAddress: string, user: string): string {
  if (publicAddress === '') return `ssh -p PORT ${user}@RELAY`;
  const { host, port } = relayHostPort(publicAddress);
  return `ssh${port === 22 ? '' : ` -p ${port}`} ${user}@${host}`;
}

/** `USER@HOST:PORT`: what `ssh -J` takes to jump through the relay as `user`. */
export function relayJump(publicAddress: string, user: string): string {
  if (publicAddress === '') return `${user}@RELAY:PORT`;
  const { host, port } = relayHostPort(publicAddress);
  return `${user}@${host.includes(':') ? `[${host}]` : host}${port === 22 ? '' : `:${port}`}`;
}

/**
 * What tokens tell agents to dial when --agent-endpoints says nothing: the public address
 * (SSH over TCP) first, then the wss:// endpoint on the HTTPS listener when its URL is
 * https://, so that a device whose network lets out only HTTPS falls back by itself.
 */
export function defaultAgentEndpoints(publicAddress: string, consoleUrl: string | null): string[] {
  const wss = consoleUrl === null ? null : agentEndpointOf(consoleUrl);
  return wss === null ? [publicAddress] : [publicAddress, formatRelayEndpoint(wss)];
}
