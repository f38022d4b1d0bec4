/**
 * What the console's live views follow: a device changed (linked, unlinked, approved,
 * revoked, removed, relabelled), access or the store changed in ways that may touch every
 * device (users, roles, another process), a reach started or ended. Fired by the relay,
 * read by the events stream (http/events-routes.ts). No buffering: a listener that wants
 * history reads the store.
 */
import type { ReachInfo } from './sessions.ts';

/** One change. `device`: read the device again; `devices`: read them all again; `session`: a reach started (`end` null) or ended. */
export type RelayEvent =
  | { type: 'device'; name: string }
  | { type: 'devices' }
  | { type: 'session'; reach: ReachInfo; end: { at: number; why: string } | null };

/** A tiny emitter of RelayEvents. */
export class RelayEvents {
  readonly #listeners = new Set<(e: RelayEvent) => void>();

  /** Calls `fn` for every event from now on; returns what stops it. */
  on(fn: (e: RelayEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => { this.#listeners.delete(fn); };
  }

  /** Tells every listener; one that throws does not keep the others from hearing it. */
  emit(e: RelayEvent): void {
    for (const fn of [...this.#listeners]) {
      try { fn(e); } catch { /* a listener's failure is its own (a stream that went away) */ }
    }
  }

  /** How many listen now (for tests and metrics). */
  get size(): number { return this.#listeners.size; }
}
