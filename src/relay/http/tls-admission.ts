/**
 * Bounds the TLS handshakes the HTTPS listener runs at once, overall and per source address
 * (an IPv6 /64 counts as one address), as the SSH front door bounds its handshakes
 * (admission.ts). A connection over its address's share is reset at accept, before its
 * ClientHello costs anything. When the overall bound is reached, the oldest handshake that has
 * run longer than a live one takes (LIMITS.httpTlsHandshakeEvictAfterMs) is dropped to make
 * room, so connections that send nothing cannot hold the places; if none is that old, the new
 * connection is reset. When a fleet of wss:// agents comes back at once, the relay so finishes
 * the handshakes it started instead of starting all of them and finishing none before the
 * agents' timeouts (each retries on its backoff).
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';

/** The bounds. */
export interface TlsAdmissionLimits { max: number; perAddress: number; evictAfterMs: number }

/** What counts as one source: an IPv4 address, or the /64 of an IPv6 one (a host may hold a whole /64). */
export function addressGroup(address: string): string {
  if (!address.includes(':') || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)) return address.replace(/^::ffff:/i, '');
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const full = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${full.slice(0, 4).map((h) => h.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

interface Pending { group: string; at: number; evict(): void }

/** The handshakes in progress, oldest first. Pure: no sockets, time given. */
export class TlsHandshakeCount {
  readonly #pending = new Map<object, Pending>();
  readonly #byGroup = new Map<string, number>();
  constructor(readonly limits: TlsAdmissionLimits) {}

  /** Admits handshake `id` from `address` (evicting the oldest stale one if it must), or returns false. */
  take(id: object, address: string, now: number, evict: () => void): boolean {
    const group = addressGroup(address);
    const mine = this.#byGroup.get(group) ?? 0;
    if (mine >= this.limits.perAddress) return false;
    if (this.#pending.size >= this.limits.max) {
      const [oldestId, oldest] = this.#pending.entries().next().value as [object, Pending];
      if (now - oldest.at < this.limits.evictAfterMs) return false;
      this.release(oldestId);
      oldest.evict();
    }
    this.#pending.set(id, { group, at: now, evict });
    this.#byGroup.set(group, (this.#byGroup.get(group) ?? 0) + 1);
    return true;
  }

  /** Ends handshake `id` (done, failed or gone); nothing for one already ended. */
  release(id: object): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    const left = (this.#byGroup.get(p.group) ?? 1) - 1;
    if (left <= 0) this.#byGroup.delete(p.group); else this.#byGroup.set(p.group, left);
  }

  get running(): number { return this.#pending.size; }
}

/** Installs the bound on `server`; returns the count (for tests) and how many connections were reset or dropped. */
export function admitTlsHandshakes(server: TlsServer, limits: TlsAdmissionLimits, now: () => number = Date.now): { count: TlsHandshakeCount; readonly shed: number } {
  const count = new TlsHandshakeCount(limits);
  /** The raw socket of each handshake in progress, by remote address and port (the TLS socket has the same). */
  const pending = new Map<string, Socket>();
  const out = { count, shed: 0 };
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const evict = () => {
      out.shed++;
      socket.destroy();
    };
    if (!count.take(socket, address, now(), evict)) return evict();
    const key = `${address}|${socket.remotePort}`;
    pending.set(key, socket);
    // However the handshake ends: done, failed, timed out, evicted, or the client gone.
    socket.once('close', () => {
      if (pending.get(key) === socket) pending.delete(key);
      count.release(socket);
    });
  });
  server.on('secureConnection', (tls: TLSSocket) => {
    const key = `${tls.remoteAddress ?? 'unknown'}|${tls.remotePort}`;
    const raw = pending.get(key);
    if (raw === undefined) return;
    pending.delete(key);
    count.release(raw);
  });
  return out;
}
