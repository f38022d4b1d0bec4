/** Paging for a server-side list: "51–100 of 10,000", and buttons for the previous and next page. */
import type { JSX } from 'preact';

/** The page shown (`offset`, `limit`), how many match (`total`), and what to do for another offset. */
export interface PagerProps { offset: number; limit: number; total: number; onChange(offset: number): void; label?: string }

/** Draws the range and the buttons; the buttons are disabled at either end. */
export function Pager({ offset, limit, total, onChange, label = 'Pages' }: PagerProps): JSX.Element {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  const fmt = (n: number) => n.toLocaleString();
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={offset <= 0} onClick={() => onChange(Math.max(0, offset - limit))}>← Previous</button>
      <span aria-live="polite">{fmt(first)}–{fmt(last)} of {fmt(total)}</span>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit)}>Next →</button>
    </nav>
  );
}
