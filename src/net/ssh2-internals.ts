/**
 * The two places where ferry reaches past ssh2's public API, kept together so that an
 * ssh2 upgrade has one file to check (both are covered by integration tests).
 */
import type { Socket } from 'node:net';
import type { Client, Connection } from 'ssh2';

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = { prohibited: 1, connectFailed: 2 } as const;

interface ProtocolLike { channelOpenFail(recipient: number, reason: number, description: string): void }

/**
 * Refuses a channel open (on either end of a connection) with a description the peer shows to the user.
 * ssh2's `reject()` always sends an empty description, so OpenSSH would print only
 * "open failed: connect failed:"; the operator needs to read *why* (offline? unknown?).
 * `reject` calls `channelOpenFail` synchronously, so wrapping it for that one call is safe.
 */
export function rejectWithMessage(conn: Connection | Client, reject: () => void, reason: number, message: string): void {
  const proto = (conn as unknown as { _protocol?: ProtocolLike })._protocol;
  if (!proto || typeof proto.channelOpenFail !== 'function') {
    reject();
    return;
  }
  const original = proto.channelOpenFail;
  proto.channelOpenFail = (recipient: number) => original.call(proto, recipient, reason, message);
  try {
    reject();
  } finally {
    proto.channelOpenFail = original;
  }
}

/** The transport socket of a server-side ssh2 connection (ssh2 keeps it as `_sock`). */
export function socketOf(conn: Connection): Socket | undefined {
  return (conn as unknown as { _sock?: Socket })._sock;
}
