/** A data table: one header row, one row per item, cells drawn by each column; scrolls sideways on a narrow screen. */
import type { ComponentChildren, JSX } from 'preact';

/** One column: its heading and how to draw a row's cell. `wide` columns are hidden on phone-width screens. */
export interface Column<T> {
  key: string;
  label: string;
  cell(row: T): ComponentChildren;
  wide?: boolean;
  /** Right-aligned (numbers). */
  numeric?: boolean;
}

/** The table's props: `rows` are drawn in order; `empty` stands in for the body when there are none. */
export interface TableProps<T> {
  columns: Column<T>[];
  rows: T[];
  rowKey(row: T): string;
  /** Names the table for screen readers. */
  caption: string;
  empty?: ComponentChildren;
  /** Greys the rows while a newer page is loading. */
  busy?: boolean;
}

/** Draws `rows` under `columns`. */
export function Table<T>(props: TableProps<T>): JSX.Element {
  const { columns, rows } = props;
  const cls = (c: Column<T>) => [c.wide ? 'wide' : '', c.numeric ? 'num' : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class="table-wrap">
      <table class={props.busy ? 'busy' : undefined} aria-busy={props.busy ? 'true' : undefined}>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>{columns.map((c) => <th key={c.key} scope="col" class={cls(c)}>{c.label}</th>)}</tr>
        </thead>
        <tbody>
          {rows.length === 0 && props.empty !== undefined
            ? <tr><td colSpan={columns.length} class="empty-cell">{props.empty}</td></tr>
            : rows.map((r) => <tr key={props.rowKey(r)}>{columns.map((c) => <td key={c.key} class={cls(c)}>{c.cell(r)}</td>)}</tr>)}
        </tbody>
      </table>
    </div>
  );
}
