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

/**
 * Slots one source address may hold in a lane of `laneLimit`, from its share in percent:
 * at least one, so that a small lane still serves every address.
 */
export function perAddressShare(laneLimit: number, percent: number): number {
  return Math.max(1, Math.floor((laneLimit * percent) / 100));
}

/**
 * Handshakes allowed at once per lane, and a first-come first-served queue behind them.
 * One source address holds at most `perAddress` of a lane's slots: otherwise a few dozen
 * connections from one address that send an identification line and then nothing would
 * take every slot until their login grace ran out. Its further connections wait (they are
 * not dropped, since many devices behind one NAT address are normal) while connections
 * from other addresses pass them.
 */
export class HandshakeSlots<T> {
  readonly #limits: Readonly<Record<Lane, number>>;
  readonly #perAddress: Readonly<Record<Lane, number>>;
  readonly #running: Record<Lane, Set<T>> = { device: new Set(), interactive: new Set() };
  // A Set keeps insertion order: its first element is the longest waiting.
  readonly #waiting: Record<Lane, Set<T>> = { device: new Set(), interactive: new Set() };
  /** Running handshakes per lane and source address. */
  readonly #byAddress: Record<Lane, Map<string, number>> = { device: new Map(), interactive: new Map() };
  readonly #items = new Map<T, { lane: Lane; address: string }>();

  /** `perAddress` defaults to the lane limits (no per-address cap). */
  constructor(limits: Readonly<Record<Lane, number>>, perAddress: Readonly<Record<Lane, number>> = limits) {
    this.#limits = limits;
    this.#perAddress = perAddress;
  }

  /** Asks for a slot: true when `item` may handshake now, false when it has been queued. */
  request(item: T, lane: Lane, address = ''): boolean {
    const known = this.#items.get(item);
    if (known) return this.#running[known.lane].has(item);
    this.#items.set(item, { lane, address });
    if (this.#mayRun(lane, address)) {
      this.#run(item, lane, address);
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
    const known = this.#items.get(item);
    if (known === undefined) return null;
    const { lane, address } = known;
    this.#items.delete(item);
    if (this.#waiting[lane].delete(item)) return null;
    this.#running[lane].delete(item);
    const n = this.#byAddress[lane].get(address)! - 1;
    if (n === 0) this.#byAddress[lane].delete(address); else this.#byAddress[lane].set(address, n);
    // The longest waiting connection whose address is under its share. This walks past the
    // queued connections of addresses at their share: at most the lane's queue limit.
    for (const next of this.#waiting[lane]) {
      const a = this.#items.get(next)!.address;
      if (!this.#mayRun(lane, a)) continue;
      this.#waiting[lane].delete(next);
      this.#run(next, lane, a);
      return next;
    }
    return null;
  }

  /** Handshakes running and connections queued, per lane. */
  counts(): Record<Lane, { running: number; waiting: number }> {
    return {
      device: { running: this.#running.device.size, waiting: this.#waiting.device.size },
      interactive: { running: this.#running.interactive.size, waiting: this.#waiting.interactive.size },
    };
  }

  #mayRun(lane: Lane, address: string): boolean {
    return this.#running[lane].size < this.#limits[lane] && (this.#byAddress[lane].get(address) ?? 0) < this.#perAddress[lane];
  }

  #run(item: T, lane: Lane, address: string): void {
    this.#running[lane].add(item);
    this.#byAddress[lane].set(address, (this.#byAddress[lane].get(address) ?? 0) + 1);
  }
}
