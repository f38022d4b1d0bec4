/** Two-way piping of byte streams with back-pressure, ending both when either fails or closes. */
import type { Duplex } from 'node:stream';

/**
 * Pipes `a` ↔ `b`. EOF travels on (half-close), back-pressure is `pipe()`'s; when either
 * side closes or errors, the other is destroyed so that no channel or socket is left open.
 * Calls `onDone` once, when both are finished.
 */
export function pipeBoth(a: Duplex, b: Duplex, onDone?: () => void): void {
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    a.destroy();
    b.destroy();
    onDone?.();
  };
  for (const s of [a, b]) {
    s.once('close', finish);
    s.once('error', finish);
  }
  a.pipe(b);
  b.pipe(a);
}
