/** A byte count in binary units ("1.5 MiB"), exact on hover. */
import type { JSX } from 'preact';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** "0 B", "512 B", "1.5 KiB", "20 MiB": three significant figures at most. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

/** Shows `n` bytes, or `—` when it is not known. */
export function Bytes({ n }: { n: number | null | undefined }): JSX.Element {
  if (n === null || n === undefined) return <span class="muted">—</span>;
  return <span title={`${n.toLocaleString()} bytes`}>{formatBytes(n)}</span>;
}
