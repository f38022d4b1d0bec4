/** An injectable clock, so that timing logic (backoff, keepalive) is tested without sleeping. */

/** A cancellable timer handle. */
export interface TimerHandle { cancel(): void }

/** What ferry needs of time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** The real clock. Timers do not keep the process alive on their own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
