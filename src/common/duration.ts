/** Durations written the way people write them on a command line: 90s, 15m, 1h, 7d. */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for `text` (e.g. `1h`, `30m`, `1h30m`), or null when it is not a duration. */
export function parseDuration(text: string): number | null {
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return null;
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
}
