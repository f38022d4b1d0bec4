/**
 * Live links by device name. The newest authenticated link for a device wins: registering
 * replaces the old entry at once and hands it back so the caller can close it.
 */
import type { DisconnectReason } from './store.ts';

/** A registered device link, as the registry sees it. */
export interface Link {
  readonly device: string;
  readonly since: number;
  readonly remoteAddress: string;
  /** Opens a channel to the device's SSH target. */
  openChannel(origin: { address: string; port: number }, timeoutMs: number): Promise<import('node:stream').Duplex>;
  /** Ends the link, recording why. Idempotent. */
  close(reason: DisconnectReason): void;
}

/** Device name → its one live link. */
export class Registry {
  readonly #links = new Map<string, Link>();

  /** Registers `link` and returns the link it replaced, if any. */
  register(link: Link): Link | undefined {
    const old = this.#links.get(link.device);
    this.#links.set(link.device, link);
    return old === link ? undefined : old;
  }

  /** Removes `link` if it is still the current one; true when it was. */
  unregister(link: Link): boolean {
    if (this.#links.get(link.device) !== link) return false;
    this.#links.delete(link.device);
    return true;
  }

  get(device: string): Link | undefined { return this.#links.get(device); }
  get size(): number { return this.#links.size; }
  links(): IterableIterator<Link> { return this.#links.values(); }
}
