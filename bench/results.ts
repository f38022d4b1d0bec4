/** Benchmark results: rows with per-round values for ferry and OpenSSH, printed as a table and kept in bench/RESULTS.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fmt, fmtSummary, summarize } from './stats.ts';

/** One measured quantity for both systems; each array holds one value per round. */
export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  /** Which direction is better, for reading the ratio. */
  better: 'higher' | 'lower';
  ferry: number[] | null;
  openssh: number[] | null;
  /** Why a side has no value (not run, no baseline, does not exist yet). */
  missing?: string;
  /** The target for this row, in words, and whether ferry's median meets it. */
  target?: string;
  met?: boolean;
}

/** What one scenario produced: rows, and sentences on how it ran (ciphers, process layout, caveats). */
export interface ScenarioResult {
  name: string;
  rows: Row[];
  notes: string[];
}

/** ferry's median over OpenSSH's, or null when either is missing. */
export function ratio(row: Row): number | null {
  if (!row.ferry?.length || !row.openssh?.length) return null;
  const f = summarize(row.ferry).median;
  const o = summarize(row.openssh).median;
  return o === 0 ? null : f / o;
}

function cells(row: Row): string[] {
  const r = ratio(row);
  return [
    row.scenario,
    `${row.metric} (${row.unit})`,
    row.ferry?.length ? fmtSummary(summarize(row.ferry)) : '–',
    row.openssh?.length ? fmtSummary(summarize(row.openssh)) : '–',
    r === null ? '–' : `${fmt(r)}${row.better === 'higher' ? ' ↑' : ' ↓'}`,
    [row.target ?? '', row.met === undefined ? '' : row.met ? '(met)' : '(NOT met)'].join(' ').trim(),
    row.missing ?? '',
  ];
}

const HEADERS = ['scenario', 'metric', 'ferry median (min–max)', 'OpenSSH median (min–max)', 'ferry/OpenSSH', 'target', 'note'];

/** A plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const data = [HEADERS, ...rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.min(60, Math.max(...data.map((r) => r[i]!.length))));
  return data.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** A Markdown table. */
export function markdownTable(rows: readonly Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEADERS.join(' | ')} |`,
    `| ${HEADERS.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

const MARKER = '<!-- bench/run.ts inserts each run below this line, newest first -->';
const HEADER = `# ferry benchmarks

\`npm run bench\` (full, under 15 minutes) or \`npm run bench -- --quick\` (under 2 minutes);
\`--only NAME\` runs one scenario. Each run adds a dated section below, newest first.
Every value is a median over rounds with the min–max over rounds in parentheses; ferry and
OpenSSH ran alternately in the same run. "↑" means higher is better, "↓" lower is better.

${MARKER}
`;

/** Inserts `section` at the top of the run list in `file` (creating the file when absent). */
export function recordRun(file: string, section: string): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : HEADER;
  if (!text.includes(MARKER)) text = `${text.trimEnd()}\n\n${MARKER}\n`;
  const at = text.indexOf(MARKER) + MARKER.length;
  writeFileSync(file, `${text.slice(0, at)}\n\n${section.trim()}\n${text.slice(at)}`);
}
