/**
 * Keeps a link up: one attempt at a time, capped exponential backoff with full jitter
 * between attempts, reset only after a link has stayed up for a while. Right after such a
 * healthy link drops, a short fast phase retries within a small window instead: a relay
 * restart or a network blip is over in seconds, and exponential growth during those
 * seconds would keep devices away for as long again after the relay is back.
 */
import type { Clock } from '../common/clock.ts';
import { backoffDelay } from '../net/backoff.ts';

/** What the loop needs. `attempt` connects once and resolves with a promise of its end. */
export interface LinkLoopOptions {
  attempt: () => Promise<{ closed: Promise<string> }>;
  clock: Clock;
  backoff: { baseMs: number; maxMs: number };
  resetAfterMs: number;
  /**
   * After a link that stayed up `resetAfterMs` drops: for `forMs`, wait at most `maxMs`
   * (jittered) between attempts, as long as every failure satisfies `keepsFast` (the relay
   * is not there at all). A relay that answers but fails or sheds us is busy: back off.
   */
  fastRetry?: { forMs: number; maxMs: number; keepsFast: (err: unknown) => boolean };
  /**
   * A failure that retrying soon cannot fix (the relay refuses this device's key): after
   * one that satisfies `when`, wait between half of `delayMs` and all of it. The loop still
   * retries, so a device that is let in again comes back by itself.
   */
  longRetry?: { when: (err: unknown) => boolean; delayMs: number };
  signal: AbortSignal;
  random?: () => number;
  onUp?: () => void;
  onDown?: (reason: string, upForMs: number) => void;
  onFailure?: (err: unknown, attempt: number) => void;
  onWait?: (delayMs: number) => void;
}

function wait(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = clock.setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { t.cancel(); resolve(); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs until `signal` aborts. Never rejects. */
export async function runLinkLoop(o: LinkLoopOptions): Promise<void> {
  let failures = 0;
  let fastUntil = -Infinity;
  while (!o.signal.aborted) {
    let long = false;
    try {
      const link = await o.attempt();
      const upAt = o.clock.now();
      o.onUp?.();
      const reason = await link.closed;
      const upFor = o.clock.now() - upAt;
      o.onDown?.(reason, upFor);
      // A link that stayed up proves the path works: come back fast. One that dropped at
      // once (a flapping network, a relay refusing us) keeps counting up.
      if (upFor >= o.resetAfterMs) {
        failures = 0;
        if (o.fastRetry) fastUntil = o.clock.now() + o.fastRetry.forMs;
      }
    } catch (err) {
      o.onFailure?.(err, failures);
      long = o.longRetry?.when(err) ?? false;
      if (long || (o.fastRetry && !o.fastRetry.keepsFast(err))) fastUntil = -Infinity;
    }
    if (o.signal.aborted) break;
    const random = o.random ?? Math.random;
    // Half the interval at least: full jitter would sometimes retry a refused key within
    // minutes, and the point is to leave the relay alone for hours.
    // The fast phase does not count towards the exponential backoff that follows it.
    const delay = long ? Math.floor(o.longRetry!.delayMs * (1 + random()) / 2)
      : o.fastRetry && o.clock.now() < fastUntil
        ? Math.floor(random() * o.fastRetry.maxMs)
        : backoffDelay(o.backoff, failures++, o.random);
    o.onWait?.(delay);
    await wait(o.clock, delay, o.signal);
  }
}
