/** Capped exponential backoff with full jitter (AWS architecture blog's "full jitter"). Pure given `random`. */

/** Backoff settings, in milliseconds. */
export interface BackoffConfig { baseMs: number; maxMs: number }

/**
 * The wait before retry number `attempt` (0 for the first retry): uniformly random in
 * [0, min(max, base·2^attempt)). Full jitter spreads a fleet reconnecting after a relay
 * restart over the whole window instead of having it arrive in waves.
 */
export function backoffDelay(cfg: BackoffConfig, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
