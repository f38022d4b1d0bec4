/**
 * The audit log: every change, reach, refusal and recording the relay wrote, newest first,
 * filtered by actor, action, target and time, paged by row id (`before`), with a button that
 * walks the whole hash chain and says whether it is intact.
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { get, query } from '../api.ts';
import type { AuditVerdict, AuditView } from '../api-types.ts';
import { Empty, ErrorBanner, Table, Time, type Column } from '../components/index.ts';
import { Link, seg } from '../router.tsx';
import { useData } from '../use-data.ts';

/** How many rows one page shows. */
const AUDIT_PAGE = 50;

/** The filters, as the form holds them (times as `datetime-local` text, in the browser's zone). */
interface Filters { actor: string; action: string; target: string; since: string; until: string }

const NO_FILTERS: Filters = { actor: '', action: '', target: '', since: '', until: '' };

function auditQuery(f: Filters, before: number | null): string {
  const iso = (local: string) => (local ? new Date(local).toISOString() : undefined);
  return query({ actor: f.actor, action: f.action, target: f.target, since: iso(f.since), until: iso(f.until), before, limit: AUDIT_PAGE });
}

/** A recording id a row names (`recording.end`, `recording.expire`, a console's `reach.end`), or null. */
function recordingOf(row: AuditView): string | null {
  const r = row.detail.recording ?? row.detail.recordingId;
  return typeof r === 'string' && /^[0-9a-f]{16}$/.test(r) && row.action !== 'recording.expire' ? r : null;
}

/** The row's detail as short `key=value` pairs (long values are cut; the full JSON is in the title). */
function detailText(detail: Record<string, unknown>): string {
  return Object.entries(detail).map(([k, v]) => {
    // Times in the detail are Unix milliseconds (expiresAt, started): shown as ISO text.
    const time = typeof v === 'number' && /(At|^started)$/.test(k) ? new Date(v).toISOString() : null;
    const text = time ?? (typeof v === 'string' ? v : JSON.stringify(v));
    return `${k}=${text.length > 40 ? `${text.slice(0, 39)}…` : text}`;
  }).join(' ');
}

const COLUMNS: Column<AuditView>[] = [
  { key: 'id', label: '#', numeric: true, wide: true, cell: (r) => r.id },
  { key: 'at', label: 'When', cell: (r) => <Time at={r.at} exact /> },
  { key: 'actor', label: 'Actor', cell: (r) => r.actor },
  { key: 'action', label: 'Action', cell: (r) => <code>{r.action}</code> },
  { key: 'target', label: 'Target', cell: (r) => r.target ?? <span class="muted">—</span> },
  {
    key: 'detail', label: 'Detail', cell: (r) => {
      const rec = recordingOf(r);
      return (
        <span class="audit-detail">
          <span title={JSON.stringify(r.detail, null, 1)}>{detailText(r.detail)}</span>
          {rec && <> <Link href={`/recordings/${seg(rec)}`}>Recording</Link></>}
        </span>
      );
    },
  },
];

/** The audit page (`/audit`). */
export default function AuditPage(): JSX.Element {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  // The `before` of each page seen so far: the last is this page's, popping one goes back to newer rows.
  const [pages, setPages] = useState<Array<number | null>>([null]);
  const before = pages[pages.length - 1]!;
  const loaded = useData((signal) => get<{ entries: AuditView[] }>(`/audit${auditQuery(filters, before)}`, signal), [filters, before]);
  const [verdict, setVerdict] = useState<AuditVerdict | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [verifyError, setVerifyError] = useState<unknown>(null);

  const rows = [...(loaded.data?.entries ?? [])].sort((a, b) => b.id - a.id);
  const oldest = rows.at(-1)?.id ?? null;

  const onFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const get = (k: keyof Filters) => String(form.get(k) ?? '').trim();
    setFilters({ actor: get('actor'), action: get('action'), target: get('target'), since: get('since'), until: get('until') });
    setPages([null]);
  };
  const onClear = () => { setFilters(NO_FILTERS); setPages([null]); };
  const verify = () => {
    setVerifying(true);
    setVerifyError(null);
    get<AuditVerdict>('/audit/verify').then(setVerdict, setVerifyError).finally(() => setVerifying(false));
  };

  return (
    <>
      <h1>Audit log</h1>
      <p class="muted">Each row holds the hash of the row before it, so a row changed or removed afterwards shows when the chain is verified.</p>
      <div class="toolbar">
        <button type="button" onClick={verify} disabled={verifying}>{verifying ? 'Verifying…' : 'Verify the chain'}</button>
        <output aria-live="polite" data-testid="verify-result">
          {verdict?.ok === true && <span class="badge badge-online">Chain verified: all {verdict.rows} rows intact{verdict.head ? `, head ${verdict.head.slice(0, 12)}` : ''}</span>}
          {verdict?.ok === false && <span class="badge badge-revoked">Chain broken at row {verdict.badId} (of {verdict.rows}): {verdict.problem}</span>}
        </output>
      </div>
      <ErrorBanner error={verifyError} />
      <form class="toolbar" onSubmit={onFilter} onReset={onClear} role="search" aria-label="Filter the audit log">
        <label>Actor <input name="actor" defaultValue={filters.actor} autocomplete="off" spellcheck={false} /></label>
        <label>Action <input name="action" defaultValue={filters.action} placeholder="reach.* or device.approve" autocomplete="off" spellcheck={false} /></label>
        <label>Target <input name="target" defaultValue={filters.target} autocomplete="off" spellcheck={false} /></label>
        <label>From <input type="datetime-local" name="since" defaultValue={filters.since} /></label>
        <label>To <input type="datetime-local" name="until" defaultValue={filters.until} /></label>
        <button type="submit">Filter</button>
        <button type="reset">Clear</button>
      </form>
      <ErrorBanner error={loaded.error} onRetry={loaded.reload} />
      {loaded.data && (
        <Table caption="Audit log rows, newest first" columns={COLUMNS} rows={rows} rowKey={(r) => String(r.id)} busy={loaded.loading}
          empty={<Empty title="No audit rows match." />} />
      )}
      <nav class="pager" aria-label="Audit pages">
        <button type="button" disabled={pages.length === 1} onClick={() => setPages([null])}>Newest</button>
        <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>← Newer</button>
        <button type="button" disabled={oldest === null || rows.length < AUDIT_PAGE} onClick={() => setPages([...pages, oldest])}>Older →</button>
      </nav>
    </>
  );
}
