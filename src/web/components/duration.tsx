/** A length of time that is still growing (a live session), redrawn every second; a finished one is plain text. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { formatDuration } from './time.tsx';

/** How often a live length is redrawn. */
const LIVE_TICK_MS = 1000;

/** `ms` when it is known; with `ms` null and `since` given, the time since `since`, counting up. */
export function Duration({ ms, since }: { ms: number | null; since?: string }): JSX.Element {
  const live = ms === null && since !== undefined;
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return undefined;
    const timer = setInterval(() => setNow(Date.now()), LIVE_TICK_MS);
    return () => clearInterval(timer);
  }, [live]);
  if (ms !== null) return <span>{formatDuration(ms)}</span>;
  if (since === undefined) return <span class="muted">—</span>;
  return <span title="still running">{formatDuration(Math.max(0, now - Date.parse(since)))}</span>;
}
