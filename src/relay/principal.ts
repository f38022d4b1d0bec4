/**
 * Who is asking: every operation, reach and session names its principal. An SSH key of a
 * relay user today, the relay host's own administrator (the local CLI), and a web console
 * session later; one type, so that policy and audit treat them alike.
 */

export type Principal =
  /** A relay user who logged in over SSH with one of their keys. */
  | { kind: 'ssh'; user: string; keyFingerprint: string; remoteAddress: string }
  /** Someone with the data dir on the relay host (`ferry COMMAND --data-dir`): every action, as the file owner has anyway. */
  | { kind: 'local'; user: string }
  /** A web console session of a relay user (the console issue). */
  | { kind: 'web'; user: string; sessionId: string; remoteAddress: string };

/** The name written in the audit log and in messages: the user, or `local:LOGIN` for the local CLI. */
export function principalName(p: Principal): string {
  return p.user;
}

/** Whether the principal is a relay user, whose roles decide (the local CLI has every action). */
export function isRelayUser(p: Principal): p is Exclude<Principal, { kind: 'local' }> {
  return p.kind !== 'local';
}
