/**
 * Live links by device name. The newest authenticated link for a device wins: registering
 * replaces the old entry at once and hands it back so the caller can close it. The one
 * exception is a clone episode (clone-detector.ts): two machines with one identity are held
 * off from replacing each other for a while. Episodes live here, in memory only.
 */
import { systemClock, type Clock } from '../common/clock.ts';
import { LIMITS } from '../protocol/limits.ts';
import { CloneDetector, type CloneEpisode, type ReplaceDecision } from './clone-detector.ts';
import type { DisconnectReason } from './store.ts';

/** A registered device link, as the registry sees it. */
export interface Link {
  readonly device: string;
  readonly since: number;
  readonly remoteAddress: string;
  /** The agent's instance id (random per agent start) from its identification line, or null when it sent none. */
  readonly instance: string | null;
  /** Opens a channel to the device's SSH target. */
  openChannel(origin: { address: string; port: number }, timeoutMs: number): Promise<import('node:stream').Duplex>;
  /** Tells the agent something it should log as a warning (on its key watch), when it can be told. */
  notify(message: string): void;
  /** Ends the link, recording why. Idempotent. */
  close(reason: DisconnectReason): void;
}

/** Device name → its one live link. */
export class Registry {
  readonly #links = new Map<string, Link>();
  readonly #clock: Pick<Clock, 'now'>;
  readonly #clones = new CloneDetector({
    windowMs: LIMITS.cloneWindowMs, comebacks: LIMITS.cloneComebacks, holdOffBaseMs: LIMITS.cloneHoldOffBaseMs, holdOffMaxMs: LIMITS.cloneHoldOffMaxMs,
  });

  constructor(clock: Pick<Clock, 'now'> = systemClock) {
    this.#clock = clock;
  }

  /** Whether a link from this agent may replace the device's registered link now (always, unless a clone episode holds it off). */
  mayRegister(device: string, from: { instance: string | null; address: string }): ReplaceDecision {
    const current = this.#links.get(device);
    if (!current) return { allow: true };
    return this.#clones.mayReplace(device, identityOf(current), from, this.#clock.now());
  }

  /**
   * Registers `link` and returns the link it replaced, if any, and whether this replace
   * started a clone episode (the caller warns once per episode).
   */
  register(link: Link): { replaced: Link | undefined; cloneEpisodeStarted: boolean } {
    const old = this.#links.get(link.device);
    this.#links.set(link.device, link);
    if (old === undefined || old === link) return { replaced: undefined, cloneEpisodeStarted: false };
    return { replaced: old, cloneEpisodeStarted: this.#clones.replaced(link.device, identityOf(old), identityOf(link), this.#clock.now()) };
  }

  /** Removes `link` if it is still the current one; true when it was. */
  unregister(link: Link): boolean {
    if (this.#links.get(link.device) !== link) return false;
    this.#links.delete(link.device);
    return true;
  }

  /** The device's clone episode, or null: two machines are using its identity. */
  cloneOf(device: string): CloneEpisode | null { return this.#clones.episode(device, this.#clock.now()); }

  get(device: string): Link | undefined { return this.#links.get(device); }
  get size(): number { return this.#links.size; }
  links(): IterableIterator<Link> { return this.#links.values(); }
}

function identityOf(link: Link): { instance: string | null; address: string } {
  return { instance: link.instance, address: link.remoteAddress };
}
