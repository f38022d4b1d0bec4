/**
 * Bounds the TLS handshakes the HTTPS listener runs at once, overall and per source address,
 * as the SSH front door bounds its handshakes (admission.ts). A connection over the bound is
 * reset at accept, before its ClientHello costs anything: when a fleet of wss:// agents comes
 * back at once, the relay finishes the handshakes it started instead of starting them all and
 * finishing none before the agents' timeouts (each retries on its backoff). A handshake has
 * LIMITS.httpTlsHandshakeTimeoutMs; a client that sends nothing holds its place no longer.
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';

/** The bounds. */
export interface TlsAdmissionLimits { max: number; perAddress: number }

/** Counts handshakes in progress and says whether one more may start. Pure: no sockets. */
export class TlsHandshakeCount {
  #running = 0;
  readonly #byAddress = new Map<string, number>();
  constructor(readonly limits: TlsAdmissionLimits) {}

  /** Takes a place for `address`, or returns false when the bound (overall or its share) is reached. */
  take(address: string): boolean {
    const mine = this.#byAddress.get(address) ?? 0;
    if (this.#running >= this.limits.max || mine >= this.limits.perAddress) return false;
    this.#running++;
    this.#byAddress.set(address, mine + 1);
    return true;
  }

  /** Gives back a place `take` gave. */
  release(address: string): void {
    this.#running--;
    const mine = (this.#byAddress.get(address) ?? 1) - 1;
    if (mine <= 0) this.#byAddress.delete(address); else this.#byAddress.set(address, mine);
  }

  get running(): number { return this.#running; }
}

/** Installs the bound on `server`; returns the count (for metrics and tests) and how many were reset. */
export function admitTlsHandshakes(server: TlsServer, limits: TlsAdmissionLimits): { count: TlsHandshakeCount; readonly shed: number } {
  const count = new TlsHandshakeCount(limits);
  /** The release of each handshake in progress, by the connection's remote address and port (the TLS socket has the same). */
  const pending = new Map<string, () => void>();
  const out = { count, shed: 0 };
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    if (!count.take(address)) {
      out.shed++;
      socket.destroy();
      return;
    }
    const key = `${address}|${socket.remotePort}`;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      pending.delete(key);
      count.release(address);
    };
    pending.set(key, release);
    // However the handshake ends: done, failed, timed out, or the client gone.
    socket.once('close', release);
  });
  server.on('secureConnection', (tls: TLSSocket) => pending.get(`${tls.remoteAddress ?? 'unknown'}|${tls.remotePort}`)?.());
  return out;
}
