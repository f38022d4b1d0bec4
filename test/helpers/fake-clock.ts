/** A clock that moves only when the test says so, for timing logic tested without sleeping. */
import type { Clock, TimerHandle } from '../../src/common/clock.ts';

/** Time stands still until `advance`, which fires the timers that fall due, in order. */
export class FakeClock implements Clock {
  #now = 1_000_000;
  #timers: { due: number; fn: () => void; seq: number }[] = [];
  #seq = 0;
  now(): number { return this.#now; }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { due: this.#now + ms, fn, seq: this.#seq++ };
    this.#timers.push(timer);
    return { cancel: () => { this.#timers = this.#timers.filter((t) => t !== timer); } };
  }
  /** How many timers are waiting. */
  get pending(): number { return this.#timers.length; }
  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const next = this.#timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = next.due;
      next.fn();
    }
    this.#now = end;
  }
}
