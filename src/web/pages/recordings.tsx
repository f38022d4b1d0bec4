/**
 * Recordings: every console session's terminal, newest first, with its length, its size and
 * the start of the sha256 the audit log holds for it; each links to its player.
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { get, query } from '../api.ts';
import type { RecordingView } from '../api-types.ts';
import { Bytes, Empty, ErrorBanner, Table, Time, type Column } from '../components/index.ts';
import { Duration } from '../components/duration.tsx';
import { Link, replaceQuery, seg, usePlace } from '../router.tsx';
import { useData } from '../use-data.ts';

/** How many recordings the page lists. */
const RECORDINGS_LIMIT = 200;

/** How many hex digits of a sha256 the list shows (hover shows all of it). */
const SHORT_HASH = 12;

const COLUMNS: Column<RecordingView>[] = [
  { key: 'device', label: 'Device', cell: (r) => r.device },
  { key: 'user', label: 'User', cell: (r) => r.user },
  { key: 'login', label: 'Login', cell: (r) => r.login, wide: true },
  { key: 'start', label: 'Started', cell: (r) => <Time at={r.startedAt} /> },
  { key: 'length', label: 'Length', cell: (r) => <Duration ms={r.durationMs} since={r.endedAt === null ? r.startedAt : undefined} /> },
  { key: 'size', label: 'Size', numeric: true, cell: (r) => (r.bytes === null ? <span class="muted">recording…</span> : <Bytes n={r.bytes} />) },
  { key: 'sha', label: 'sha256', wide: true, cell: (r) => (r.sha256 ? <code title={r.sha256}>{r.sha256.slice(0, SHORT_HASH)}</code> : <span class="muted">—</span>) },
  { key: 'play', label: 'Recording', cell: (r) => <Link href={`/recordings/${seg(r.id)}`} aria-label={`Play the recording of ${r.user} on ${r.device}`}>Play</Link> },
];

/** The recordings page (`/recordings`; `?device=` and `?user=` filter it). */
export default function RecordingsPage(): JSX.Element {
  const place = usePlace();
  const device = place.query.get('device') ?? '';
  const user = place.query.get('user') ?? '';
  const data = useData((signal) => get<{ recordings: RecordingView[] }>(`/recordings${query({ device, user, limit: RECORDINGS_LIMIT })}`, signal), [device, user]);
  const onFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const q = new URLSearchParams();
    for (const k of ['device', 'user']) {
      const v = String(form.get(k) ?? '').trim();
      if (v) q.set(k, v);
    }
    replaceQuery(q);
  };
  return (
    <>
      <h1>Recordings</h1>
      <p class="muted">Each console terminal session is recorded as it runs (asciicast v2); its sha256 goes into the audit log when it ends.</p>
      <form class="toolbar" onSubmit={onFilter} role="search" aria-label="Filter recordings">
        <label>Device <input name="device" defaultValue={device} autocomplete="off" spellcheck={false} /></label>
        <label>User <input name="user" defaultValue={user} autocomplete="off" spellcheck={false} /></label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBanner error={data.error} onRetry={data.reload} />
      {data.data && (
        <Table caption="Recordings" columns={COLUMNS} rows={data.data.recordings} rowKey={(r) => r.id} busy={data.loading}
          empty={<Empty title="No recordings match.">A recording is made for each terminal session opened in this console.</Empty>} />
      )}
    </>
  );
}
