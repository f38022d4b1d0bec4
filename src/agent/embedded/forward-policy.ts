/** What `ssh -L` may reach from a device's built-in server. Pure. */
import { isIP } from 'node:net';
import { asciiLowerCase } from '../../protocol/names.ts';

/** One allowed destination: a host (name or address) and a port, or any port. */
export interface ForwardRule { host: string; port: number | '*' }

/** Default: loopback only, any port (the service on the device itself). */
export const DEFAULT_FORWARD_RULES: readonly ForwardRule[] = [
  { host: '127.0.0.1', port: '*' }, { host: 'localhost', port: '*' }, { host: '::1', port: '*' },
];

/** Parses `HOST:PORT` or `HOST:*` rules (`[v6]:PORT` for IPv6), reporting every bad one. */
export function parseForwardRules(items: readonly string[]): { rules: ForwardRule[]; problems: string[] } {
  const rules: ForwardRule[] = [];
  const problems: string[] = [];
  for (const item of items) {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\*|\d{1,5})$/.exec(item);
    const port = m ? (m[3] === '*' ? '*' : Number(m[3])) : NaN;
    if (!m || (port !== '*' && (port < 1 || port > 65535))) problems.push(`forward rule '${item}' must be HOST:PORT or HOST:*`);
    else rules.push({ host: asciiLowerCase((m[1] ?? m[2])!), port: port as number | '*' });
  }
  return { rules, problems };
}

/** Whether a `direct-tcpip` to host:port is allowed by `rules`. Hosts match exactly (no DNS here). */
export function mayForward(rules: readonly ForwardRule[], host: string, port: number): boolean {
  // A-Z only: toLowerCase() would turn a look-alike such as KELVIN SIGN + 'iosk' into an allowed name.
  const h = asciiLowerCase(host).replace(/^\[|\]$/g, '');
  if (isIP(h) === 0 && !/^[a-z0-9.-]+$/.test(h)) return false;
  return rules.some((r) => r.host === h && (r.port === '*' || r.port === port));
}
