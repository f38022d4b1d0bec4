/**
 * Which connections may run their SSH handshake now and which wait their turn. Pure
 * bookkeeping; the front door does the I/O (pausing and resuming sockets).
 *
 * A handshake costs the relay a key exchange and a signature. When ten thousand devices
 * come back at once, letting them all handshake together makes every one of them slow
 * (each waits behind all the others' crypto) and the whole storm takes longest; running a
 * bounded number at a time and queueing the rest finishes each quickly and all soonest.
 * Devices and everyone else (operators) wait in separate lanes, so a fleet coming back
 * does not stand between an operator and the relay.
 */

/** `device`: a ferry agent. `interactive`: anything else, such as an operator's OpenSSH. */
export type Lane = 'device' | 'interactive';

/** Longest SSH identification line, CR LF included (RFC 4253 §4.2). */
export const MAX_IDENT_BYTES = 255;

/**
 * The lane of a connection from the first line it sent. The line is the client's claim and
 * is not trusted for anything else: claiming to be an agent only puts a client in the
 * device lane's queue, and it still has to log in with a device key.
 */
export function laneOf(identLine: string): Lane {
  return identLine.startsWith('SSH-2.0-ferry-agent_') ? 'device' : 'interactive';
}

/** Handshakes allowed at once per lane, and a first-come first-served queue behind them. */
export class HandshakeSlots<T> {
  readonly #limits: Readonly<Record<Lane, number>>;
  readonly #running: Record<Lane, Set<T>> = { device: new Set(), interactive: new Set() };
  // A Set keeps insertion order: its first element is the longest waiting.
  readonly #waiting: Record<Lane, Set<T>> = { device: new Set(), interactive: new Set() };
  readonly #lanes = new Map<T, Lane>();

  constructor(limits: Readonly<Record<Lane, number>>) {
    this.#limits = limits;
  }

  /** Asks for a slot: true when `item` may handshake now, false when it has been queued. */
  request(item: T, lane: Lane): boolean {
    if (this.#lanes.has(item)) return this.#running[this.#lanes.get(item)!].has(item);
    this.#lanes.set(item, lane);
    if (this.#running[lane].size < this.#limits[lane]) {
      this.#running[lane].add(item);
      return true;
    }
    this.#waiting[lane].add(item);
    return false;
  }

  /**
   * `item` no longer needs a slot (it authenticated, or it is gone). Returns the queued item
   * that takes the freed slot, which the caller lets go on, or null.
   */
  release(item: T): T | null {
    const lane = this.#lanes.get(item);
    if (lane === undefined) return null;
    this.#lanes.delete(item);
    if (this.#waiting[lane].delete(item)) return null;
    this.#running[lane].delete(item);
    const next = this.#waiting[lane].values().next();
    if (next.done) return null;
    this.#waiting[lane].delete(next.value);
    this.#running[lane].add(next.value);
    return next.value;
  }

  /** Handshakes running and connections queued, per lane. */
  counts(): Record<Lane, { running: number; waiting: number }> {
    return {
      device: { running: this.#running.device.size, waiting: this.#waiting.device.size },
      interactive: { running: this.#running.interactive.size, waiting: this.#waiting.interactive.size },
    };
  }
}
