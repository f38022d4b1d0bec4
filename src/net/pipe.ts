/** Two-way piping of byte streams with back-pressure and real half-close, ending both when done. */
import type { Duplex } from 'node:stream';

/** How long a side that has ended may take to flush its last bytes before it is destroyed. */
const FLUSH_TIMEOUT_MS = 30_000;

/** An ssh2 channel: `eof()` sends EOF without closing the channel. */
type MaybeChannel = Duplex & { eof?: () => void };

/**
 * Ends the writing side of `s` once everything written so far has gone out, then calls `done`.
 * For an ssh2 channel that means sending EOF but keeping the channel open: `end()` on a
 * server-side ssh2 channel also closes it, which would cut off the reply of a peer that
 * answers after reading EOF (an sshd that gets EOF before it has sent its banner).
 */
function halfClose(s: MaybeChannel, done: () => void): void {
  if (s.destroyed || s.writableEnded) return done();
  if (typeof s.eof === 'function') {
    // The empty write's callback runs after every earlier chunk has been handed to ssh2.
    s.write(Buffer.alloc(0), () => {
      s.eof!();
      done();
    });
  } else {
    s.end(done);
  }
}

/** Destroys `s`, but lets a side that has ended flush its buffered bytes first (bounded). */
function settle(s: Duplex): void {
  if (s.destroyed) return;
  if (s.writableEnded && !s.writableFinished) {
    const timer = setTimeout(() => s.destroy(), FLUSH_TIMEOUT_MS);
    timer.unref();
    s.once('finish', () => { clearTimeout(timer); s.destroy(); });
    return;
  }
  s.destroy();
}

/**
 * Pipes `a` ↔ `b`. EOF travels on as a half-close, back-pressure is `pipe()`'s, and when
 * both directions have ended, or either side closes or fails, both are finished so that no
 * channel or socket is left open. Calls `onDone` once.
 */
export function pipeBoth(a: Duplex, b: Duplex, onDone?: () => void): void {
  let finished = false;
  let ended = 0;
  const finish = () => {
    if (finished) return;
    finished = true;
    settle(a);
    settle(b);
    onDone?.();
  };
  const forward = (src: Duplex, dst: Duplex) => {
    src.pipe(dst, { end: false });
    src.once('end', () => halfClose(dst, () => { if (++ended === 2) finish(); }));
  };
  forward(a, b);
  forward(b, a);
  for (const s of [a, b]) {
    s.once('close', finish);
    s.once('error', finish);
  }
}
