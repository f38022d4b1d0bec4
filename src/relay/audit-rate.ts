/**
 * A bound on how many rows one noisy source writes to the audit log: so many per window,
 * then nothing but one summary row per window that says how many were left out. A flood of
 * bad logins or device reports then costs a fixed number of rows a minute, and the record
 * still says that it happened.
 */
import type { Clock, TimerHandle } from '../common/clock.ts';

/** How many rows a source may write per window, and how long a window is. */
export interface AuditRate { perWindow: number; windowMs: number }

/** Counts one source's rows; `summary` is called once per window in which some were left out. */
export class AuditRateLimit {
  readonly #clock: Clock;
  readonly #rate: AuditRate;
  readonly #summary: (left: { suppressed: number; from: number; until: number }) => void;
  #windowStart = -Infinity;
  #written = 0;
  #suppressed = 0;
  #flush: TimerHandle | null = null;

  constructor(clock: Clock, rate: AuditRate, summary: (left: { suppressed: number; from: number; until: number }) => void) {
    this.#clock = clock;
    this.#rate = rate;
    this.#summary = summary;
  }

  /** Whether the next row may be written now; when not, it is counted for the summary. */
  take(): boolean {
    const now = this.#clock.now();
    if (now - this.#windowStart >= this.#rate.windowMs) {
      this.flush();
      this.#windowStart = now;
      this.#written = 0;
    }
    if (this.#written < this.#rate.perWindow) {
      this.#written++;
      return true;
    }
    if (this.#suppressed++ === 0) {
      // The summary goes out when the window ends even if the source has gone quiet by then.
      this.#flush = this.#clock.setTimeout(() => this.flush(), this.#windowStart + this.#rate.windowMs - now);
    }
    return false;
  }

  /** Writes the pending summary now, if rows were left out (at the window's end, or when the source goes away). */
  flush(): void {
    this.#flush?.cancel();
    this.#flush = null;
    if (this.#suppressed === 0) return;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#summary({ suppressed, from: this.#windowStart, until: this.#clock.now() });
  }
}
