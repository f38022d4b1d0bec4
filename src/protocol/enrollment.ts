/** The enrollment exchange between agent and relay: an exec request and its JSON answer. Pure. */

/** The exec command word an enrolling agent sends; the JSON request follows it. */
export const ENROLL_COMMAND = 'enroll';

/** What the agent asks. The token's secret travels inside the encrypted SSH channel. */
export interface EnrollRequest {
  tokenId: string;
  secret: string;
  /** The name the operator asked for with --name, if any. */
  name: string | null;
  /** The device's host name as a DNS label: the name when neither token nor --name gives one. */
  hostname: string | null;
  /** The device's SSH host key line (`ssh-ed25519 AAAA…`) for its embedded server, published to operators. */
  hostKey?: string | null;
}

/** What the relay answers. */
export type EnrollResponse =
  | { ok: true; name: string; status: 'pending' | 'approved' }
  | { ok: false; code: string; message: string };

/** The exec command line for a request. */
export function enrollCommand(req: EnrollRequest): string {
  return `${ENROLL_COMMAND} ${JSON.stringify(req)}`;
}

/** Parses an exec command line as an enrollment request, or null when it is not one. */
export function parseEnrollCommand(command: string): EnrollRequest | null {
  if (!command.startsWith(ENROLL_COMMAND + ' ')) return null;
  try {
    const o = JSON.parse(command.slice(ENROLL_COMMAND.length + 1)) as Record<string, unknown>;
    const optional = (v: unknown) => v === null || typeof v === 'string';
    if (typeof o.tokenId !== 'string' || typeof o.secret !== 'string' || !optional(o.name) || !optional(o.hostname) || !optional(o.hostKey ?? null)) return null;
    return { tokenId: o.tokenId, secret: o.secret, name: o.name as string | null, hostname: o.hostname as string | null, hostKey: (o.hostKey ?? null) as string | null };
  } catch {
    return null;
  }
}
