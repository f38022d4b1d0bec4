/** A moment, shown relative to now ("3 min ago") and exactly on hover and to screen readers via <time datetime>. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** How often relative times are redrawn. */
const TICK_MS = 15_000;

const ticks = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;

/** One timer for every <Time> on the page, running only while one is shown. */
function useTick(): void {
  const [, set] = useState(0);
  useEffect(() => {
    const f = () => set((n) => n + 1);
    ticks.add(f);
    timer ??= setInterval(() => { for (const t of [...ticks]) t(); }, TICK_MS);
    return () => {
      ticks.delete(f);
      if (ticks.size === 0 && timer !== null) { clearInterval(timer); timer = null; }
    };
  }, []);
}

/** "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago", or "in …" for a future time. */
export function relativeTime(at: Date, now: number = Date.now()): string {
  const s = Math.round((now - at.getTime()) / 1000);
  const abs = Math.abs(s);
  const [n, unit] = abs < 5 ? [0, ''] : abs < 60 ? [abs, 's'] : abs < 3600 ? [Math.floor(abs / 60), 'min'] : abs < 86_400 ? [Math.floor(abs / 3600), 'h'] : [Math.floor(abs / 86_400), 'd'];
  if (unit === '') return 'just now';
  return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** An ISO time (or null, shown as `never`). `exact` shows the date and time instead of the relative form. */
export function Time({ at, never = '—', exact = false }: { at: string | null; never?: string; exact?: boolean }): JSX.Element {
  useTick();
  if (at === null) return <span class="muted">{never}</span>;
  const d = new Date(at);
  const full = d.toLocaleString();
  return <time dateTime={at} title={full}>{exact ? full : relativeTime(d)}</time>;
}

/** A length of time: "850 ms", "42 s", "3 min 5 s", "2 h 10 min". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
