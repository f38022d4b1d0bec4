/**
 * Telling a cloned device identity (one state dir copied to two machines) from an agent that
 * reconnects. Pure: it takes times and identities and returns decisions; the device link
 * does the I/O.
 *
 * "Newest link wins" makes two agents with one key replace each other forever, each a
 * second after the other. A single replace by another identity is normal (an agent
 * restarts and its old link is still registered, or a device moves to another network), but
 * two identities that keep taking the link back from each other are two machines. While
 * such an episode lasts, a link from the other machine is refused for a hold-off that
 * doubles with every replace, so the flapping slows to a handful of replaces an hour.
 */

/** Who is behind a link: the agent's instance id (random per agent start) when it sent one, and its address. */
export interface LinkIdentity { readonly instance: string | null; readonly address: string }

/** The detector's limits (LIMITS.clone* by default). */
export interface CloneLimits {
  /** Replaces within this window count together; an episode ends after this long without contention. */
  windowMs: number;
  /** Times an identity must take the link back from another, within the window, to start an episode. */
  comebacks: number;
  holdOffBaseMs: number;
  holdOffMaxMs: number;
}

/** A clone episode as the relay shows it (`devices`). */
export interface CloneEpisode {
  readonly since: number;
  /** The addresses the contending agents connect from, in the order first seen. */
  readonly addresses: readonly string[];
  /** Replaces since the episode started. */
  readonly replaces: number;
}

/** What a link that would replace the registered one may do. */
export type ReplaceDecision = { allow: true } | { allow: false; retryInMs: number };

/** True when both links come from the same agent (its own old link, or its own reconnect). */
export function sameAgent(a: LinkIdentity, b: LinkIdentity): boolean {
  return a.instance !== null && b.instance !== null ? a.instance === b.instance : a.address === b.address;
}

const keyOf = (id: LinkIdentity): string => id.instance ?? `@${id.address}`;

interface DeviceState {
  /** Replaces by another identity within the window: who lost the link and who took it. */
  events: { at: number; from: string; to: string }[];
  episode: { since: number; addresses: string[]; replaces: number; lastReplaceAt: number; lastContendedAt: number } | null;
}

/** Per-device replace history and clone episodes, in memory. */
export class CloneDetector {
  readonly #limits: CloneLimits;
  readonly #devices = new Map<string, DeviceState>();

  constructor(limits: CloneLimits) {
    this.#limits = limits;
  }

  /** Whether a link from `incoming` may replace the registered link from `current` at `now`. */
  mayReplace(device: string, current: LinkIdentity, incoming: LinkIdentity, now: number): ReplaceDecision {
    if (sameAgent(current, incoming)) return { allow: true };
    const episode = this.episode(device, now) && this.#devices.get(device)!.episode!;
    if (!episode) return { allow: true };
    episode.lastContendedAt = now;
    const until = episode.lastReplaceAt + this.#holdOff(episode.replaces);
    return now < until ? { allow: false, retryInMs: until - now } : { allow: true };
  }

  /**
   * Records that a link from `next` replaced one from `old`. Returns true when this replace
   * starts a clone episode (the caller warns once), false otherwise.
   */
  replaced(device: string, old: LinkIdentity, next: LinkIdentity, now: number): boolean {
    if (sameAgent(old, next)) return false;
    this.episode(device, now); // Ends an episode that has gone quiet.
    const state = this.#devices.get(device) ?? { events: [], episode: null };
    this.#devices.set(device, state);
    state.events = state.events.filter((e) => now - e.at < this.#limits.windowMs);
    state.events.push({ at: now, from: keyOf(old), to: keyOf(next) });
    const ep = state.episode;
    if (ep) {
      ep.replaces++;
      ep.lastReplaceAt = ep.lastContendedAt = now;
      for (const a of [old.address, next.address]) if (!ep.addresses.includes(a)) ep.addresses.push(a);
      return false;
    }
    // A comeback: the identity taking the link lost it earlier in the window.
    const comebacks = state.events.filter((e, i) => state.events.slice(0, i).some((earlier) => earlier.from === e.to)).length;
    if (comebacks < this.#limits.comebacks) return false;
    state.episode = { since: now, addresses: [...new Set([old.address, next.address])], replaces: 0, lastReplaceAt: now, lastContendedAt: now };
    return true;
  }

  /** The device's clone episode at `now`, or null when there is none (or it has gone quiet). */
  episode(device: string, now: number): CloneEpisode | null {
    const state = this.#devices.get(device);
    if (!state) return null;
    const ep = state.episode;
    if (!ep) {
      // Nothing worth keeping: the last replace by another identity is out of the window.
      if (state.events.every((e) => now - e.at >= this.#limits.windowMs)) this.#devices.delete(device);
      return null;
    }
    if (now - ep.lastContendedAt >= this.#limits.windowMs && now >= ep.lastReplaceAt + this.#holdOff(ep.replaces)) {
      this.#devices.delete(device);
      return null;
    }
    return { since: ep.since, addresses: [...ep.addresses], replaces: ep.replaces };
  }

  #holdOff(replaces: number): number {
    return Math.min(this.#limits.holdOffMaxMs, this.#limits.holdOffBaseMs * 2 ** Math.min(replaces, 30));
  }
}
