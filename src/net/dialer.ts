/**
 * How an agent (or the bench's simulated devices) opens the byte stream its SSH link runs on:
 * a TCP connection (`tcpDialer`), or a WebSocket on the relay's HTTPS listener, perhaps through
 * an HTTP proxy (ws-dialer.ts). The SSH handshake on top is the same for both.
 */
import type { Duplex } from 'node:stream';
import { connectTcp } from './tcp.ts';

/** Opens transport streams to one relay endpoint. */
export interface Dialer {
  /** The endpoint, for messages and logs: `relay.example.com:2222` or `wss://relay.example.com/v1/agent`. */
  readonly label: string;
  /**
   * Opens one stream within `timeoutMs`, or rejects with a FerryError saying why. An attempt
   * that found no relay at all (nothing listening, no route, no answer) is marked so that
   * `isUnreachable` says so: the agent retries those quickly.
   */
  dial(timeoutMs: number): Promise<Duplex>;
  /**
   * Told how the SSH connection on the last stream `dial` gave ended up: logged in (true), or
   * failed after the stream was up (false: a port that accepts TCP and then drops SSH, as
   * some firewalls and captive portals do). A list of endpoints uses it to pick the next.
   */
  outcome?(sshUp: boolean): void;
}

/** Errors of attempts that found no relay at all, as opposed to a relay that answered and then failed us. */
const unreachable = new WeakSet<object>();

/** Marks `err` as an attempt that reached nothing; returns it. */
export function markUnreachable<E>(err: E): E {
  if (typeof err === 'object' && err !== null) unreachable.add(err);
  return err;
}

/**
 * True when `err` says the relay could not be reached at all. Such attempts cost the relay
 * nothing, so the agent may retry them quickly; a refusal or a failed handshake means a relay
 * that is there (and perhaps busy).
 */
export function isUnreachable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unreachable.has(err);
}

/** What a TCP dialer needs besides the address. */
export interface TcpDialerOptions {
  /** TCP keepalive probes start after this much idle time. */
  keepaliveMs: number;
  /** While no answer has come, start another connect this often (tcp.ts); 0: never. */
  redialMs: number;
  /** Connect from this source address (the bench's simulated devices: one loopback address each); default the system's choice. */
  localAddress?: string;
}

/** Dials `host:port` over TCP (Nagle off, never half-open: an SSH transport's FIN means its peer is gone). */
export function tcpDialer(host: string, port: number, o: TcpDialerOptions): Dialer {
  const label = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    label,
    async dial(timeoutMs) {
      try {
        const sock = await connectTcp(host, port, timeoutMs, false, o.redialMs, o.localAddress);
        sock.setKeepAlive(true, o.keepaliveMs);
        return sock;
      } catch (err) {
        throw markUnreachable(err);
      }
    },
  };
}
