/**
 * One SSH connection from the agent to the relay: a transport stream from a Dialer (TCP, or a
 * WebSocket; dialer.ts), handshake with the relay's host key checked against the pinned
 * fingerprint, public-key login. No retries here.
 */
import ssh2 from 'ssh2';
import type { Algorithms, Client } from 'ssh2';
import { FerryError } from '../common/errors.ts';
import { fingerprintOf, offeredKey, type KeyPair } from '../common/ssh-keys.ts';
import type { Duplex } from 'node:stream';
import type { Dialer } from '../net/dialer.ts';
import { LIMITS } from '../protocol/limits.ts';
import { VERSION } from '../protocol/version.ts';
import { SSH_ALGORITHMS } from '../protocol/ssh-algorithms.ts';

/** What one connection needs. */
export interface RelayConnectionOptions {
  /** Opens the transport stream; its label names the relay in messages. */
  dialer: Dialer;
  /** The pinned relay host-key fingerprint (`SHA256:…`). */
  fingerprint: string;
  key: KeyPair;
  username: string;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  connectTimeoutMs: number;
  /**
   * A random id for this run of the agent, sent after the version in the SSH identification
   * line: the relay tells two machines sharing one identity (a copied state dir) from one
   * agent reconnecting by it.
   */
  instanceId?: string;
  /** Learns the relay's host key as a key line, once it has matched the pinned fingerprint. */
  onVerifiedHostKey?: (line: string) => void;
}

/** Connects and logs in; resolves with a ready ssh2 Client or rejects with a FerryError saying why. */
export async function connectToRelay(o: RelayConnectionOptions): Promise<Client> {
  const started = Date.now();
  // The dialer marks attempts that reached nothing (dialer.ts's isUnreachable).
  const sock = await o.dialer.dial(o.connectTimeoutMs);
  // The label after the dial: a list of endpoints names the one that connected.
  const relay = o.dialer.label;
  const client = new ssh2.Client();
  let presented: string | null = null;
  return new Promise((resolve, reject) => {
    let failed = false;
    // ssh2 reports a close after the relay's ident but before the login only as 'close' (below).
    const busy = new Error('the relay closed the connection before the login finished (it may be busy)');
    const fail = (err: Error & { level?: string }) => {
      // ssh2 may emit more than one error for one failure (a reset, then "lost before handshake").
      if (failed) return;
      failed = true;
      client.removeAllListeners('ready');
      sock.destroy();
      if (presented !== null && presented !== o.fingerprint) {
        reject(new FerryError('FERRY_HOSTKEY_MISMATCH', `the relay at ${relay} presented host key ${presented}, but this agent pinned ${o.fingerprint}: refusing to connect. `
          + 'Someone may be intercepting the connection, or the relay was reinstalled with a new key; in the latter case enrol again with a new token.'));
      } else if (err.level === 'client-authentication') {
        reject(new FerryError('FERRY_AUTH_REFUSED', `the relay at ${relay} refused this agent's key (${o.key.publicKey.fingerprint}) as '${o.username}': the device may have been revoked or removed; enrol again with a new token`));
      } else if (err.level === 'client-timeout') {
        // The stream came up but SSH did not get through it: with several endpoints, another goes first next time.
        o.dialer.outcome?.(false);
        reject(new FerryError('FERRY_TIMEOUT', `the SSH handshake with ${relay} did not finish within ${o.connectTimeoutMs} ms`));
      } else {
        if (err !== busy) o.dialer.outcome?.(false);
        reject(new FerryError('FERRY_CONNECT_FAILED', `SSH to ${relay} failed: ${err.message}`, { cause: err }));
      }
    };
    client.on('error', fail);
    // ssh2 reports a close after the relay's ident but before the login only as 'close' (and
    // stops its ready timer), so without this the attempt would wait forever: a busy relay
    // drops connections that waited too long for a handshake.
    const closedEarly = () => fail(busy);
    client.once('close', closedEarly);
    client.once('ready', () => {
      client.off('error', fail);
      client.off('close', closedEarly);
      // Later errors (keepalive timeout, reset) surface as 'close'; keep one listener so none is unhandled.
      client.on('error', () => {});
      endWhenSilent(client, sock, o.keepaliveIntervalMs + LIMITS.linkStallGraceMs);
      o.dialer.outcome?.(true);
      resolve(client);
    });
    client.connect({
      sock,
      username: o.username,
      privateKey: o.key.privateKey,
      ident: `ferry-agent_${VERSION}${o.instanceId ? ` ${o.instanceId}` : ''}`,
      algorithms: SSH_ALGORITHMS as Algorithms,
      hostVerifier: (key: Buffer) => {
        presented = fingerprintOf(key);
        if (presented !== o.fingerprint) return false;
        // The blob starts with its type string (length-prefixed): enough for a key line.
        if (key.length > 4 && key.readUInt32BE(0) <= key.length - 4) o.onVerifiedHostKey?.(offeredKey(key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1'), key).line);
        return true;
      },
      keepaliveInterval: o.keepaliveIntervalMs,
      keepaliveCountMax: o.keepaliveCountMax,
      readyTimeout: Math.max(1, o.connectTimeoutMs - (Date.now() - started)),
    });
  });
}

/**
 * Ends a ready connection when nothing has come from the relay for `ms`. The agent pings
 * every keepalive interval and the relay answers at once, so silence that long means the
 * path is gone (a network that drops packets sends no FIN and no RST). ssh2's own
 * keepalive would wait for several missed pings; meanwhile TCP backs off its resends, and
 * when the network comes back the old connection may take many seconds to move again. A
 * fresh connection does not wait: the link loop dials one at once.
 */
function endWhenSilent(client: Client, sock: Duplex, ms: number): void {
  const timer = setTimeout(() => {
    client.emit('error', new Error(`nothing from the relay for ${Math.round(ms / 1000)} s: the network path is gone`));
    sock.destroy();
  }, ms);
  sock.on('data', () => timer.refresh());
  sock.once('close', () => clearTimeout(timer));
}
