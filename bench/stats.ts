/** Small statistics for benchmark samples: quantiles, a summary per series, and number formatting. */

/** The q-quantile (0..1) of `values` with linear interpolation; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Median and min–max of a series of per-round values. */
export interface Summary { median: number; min: number; max: number; n: number }

export function summarize(values: readonly number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** A number with about three significant digits, no exponent. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** "median (min–max)" for a summary. */
export function fmtSummary(s: Summary): string {
  return s.n <= 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

/** Bytes as MiB/GiB. */
export function fmtBytes(n: number): string {
  return n >= 1024 ** 3 ? `${fmt(n / 1024 ** 3)} GiB` : `${fmt(n / 1024 ** 2)} MiB`;
}
