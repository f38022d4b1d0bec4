/** An injectable clock, so that timing logic (backoff, keepalive) is tested without sleeping. */

/** A cancellable timer handle. */
export interface TimerHandle { cancel(): void }

/** What ferry needs of time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/**
 * The real clock. Its timers are plain Node timers, not unref'd: a pending one keeps the
 * process alive until it fires or is cancelled (the agent's backoff sleep relies on that),
 * so whoever sets one cancels it once it is no longer needed.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
