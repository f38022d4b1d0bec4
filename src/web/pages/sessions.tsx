/**
 * Sessions: who reached which device, as whom, when, for how long, and how many bytes moved.
 * Live ones come first and follow the relay's event stream (a session that starts or ends
 * appears or changes without a reload); past ones come from the audit log. A console
 * session links to its recording.
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { events, get, query } from '../api.ts';
import type { SessionView } from '../api-types.ts';
import { Bytes, ErrorBanner, Empty, Table, Time, type Column } from '../components/index.ts';
import { Duration } from '../components/duration.tsx';
import { Link, replaceQuery, seg, usePlace } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** How many sessions the page lists. */
const SESSIONS_LIMIT = 100;

type Which = 'all' | 'live' | 'past';

function whichOf(q: URLSearchParams): Which {
  const live = q.get('live');
  return live === 'true' ? 'live' : live === 'false' ? 'past' : 'all';
}

/** Live first, then the newest start first. */
function ordered(list: SessionView[]): SessionView[] {
  return [...list].sort((a, b) => Number(b.live) - Number(a.live) || b.startedAt.localeCompare(a.startedAt));
}

const COLUMNS: Column<SessionView>[] = [
  { key: 'user', label: 'User', cell: (s) => s.user },
  { key: 'device', label: 'Device', cell: (s) => <Link href={`/devices/${seg(s.device)}`}>{s.device}</Link> },
  { key: 'login', label: 'Login', cell: (s) => s.login ?? <span class="muted">—</span> },
  { key: 'kind', label: 'Kind', cell: (s) => (s.kind === 'console' ? 'console' : 'ssh -J'), wide: true },
  { key: 'start', label: 'Started', cell: (s) => <Time at={s.startedAt} /> },
  { key: 'length', label: 'Length', cell: (s) => <Duration ms={s.live ? null : s.durationMs} since={s.startedAt} /> },
  { key: 'in', label: 'In', numeric: true, wide: true, cell: (s) => <span title="from the operator to the device"><Bytes n={s.bytesIn} /></span> },
  { key: 'out', label: 'Out', numeric: true, wide: true, cell: (s) => <span title="from the device to the operator"><Bytes n={s.bytesOut} /></span> },
  { key: 'end', label: 'Ended', cell: (s) => (s.live ? <span class="badge badge-online">live</span> : s.endReason ?? <span class="muted">—</span>) },
  {
    key: 'rec', label: 'Recording', cell: (s) => s.recordingId ? <Link href={`/recordings/${seg(s.recordingId)}`}>Play</Link>
      : s.kind === 'jump' ? <span class="muted" title="ssh -J is encrypted end to end: the relay cannot read it">not recorded</span> : <span class="muted">—</span>,
  },
];

/** The sessions page (`/sessions`; `?live=true|false`, `?device=`, `?user=` filter it). */
export default function SessionsPage(): JSX.Element {
  const place = usePlace();
  const me = useMe();
  const which = whichOf(place.query);
  const device = place.query.get('device') ?? '';
  const user = place.query.get('user') ?? '';
  const data = useData((signal) => get<{ sessions: SessionView[] }>(`/sessions${query({
    live: which === 'all' ? undefined : which === 'live', device, user, limit: SESSIONS_LIMIT,
  })}`, signal), [which, device, user]);
  const [list, setList] = useState<SessionView[]>([]);
  useEffect(() => { if (data.data) setList(ordered(data.data.sessions)); }, [data.data]);

  // A session that starts or ends arrives whole: it replaces the row with its id or, when it
  // is new and passes the filters, joins the list.
  useEffect(() => events({
    session(s) {
      const passes = (which === 'all' || s.live === (which === 'live')) && (!device || s.device === device) && (!user || s.user === user);
      setList((old) => {
        const rest = old.filter((o) => o.id !== s.id);
        return passes ? ordered([s, ...rest]).slice(0, SESSIONS_LIMIT) : rest;
      });
    },
  }), [which, device, user]);

  const set = (changes: Record<string, string>) => {
    const q = new URLSearchParams(place.query);
    for (const [k, v] of Object.entries(changes)) if (v) q.set(k, v); else q.delete(k);
    replaceQuery(q);
  };
  const onFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    set({ device: String(form.get('device') ?? '').trim(), user: String(form.get('user') ?? '').trim() });
  };
  const live = list.filter((s) => s.live).length;
  return (
    <>
      <h1>Sessions</h1>
      <p class="muted">Every reach of a device, by <code>ssh -J</code> or the console. {live > 0 ? `${live} live now.` : 'None live now.'}{can(me, 'audit.read') ? '' : ' You see your own sessions (everyone\'s needs audit.read).'}</p>
      <form class="toolbar" onSubmit={onFilter} role="search" aria-label="Filter sessions">
        <label>Show
          <select value={which} onChange={(e) => set({ live: { all: '', live: 'true', past: 'false' }[(e.currentTarget as HTMLSelectElement).value as Which] })}>
            <option value="all">live and ended</option>
            <option value="live">live only</option>
            <option value="past">ended only</option>
          </select>
        </label>
        <label>Device <input name="device" defaultValue={device} autocomplete="off" spellcheck={false} /></label>
        <label>User <input name="user" defaultValue={user} autocomplete="off" spellcheck={false} /></label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBanner error={data.error} onRetry={data.reload} />
      {data.data && (
        <Table caption="Sessions" columns={COLUMNS} rows={list} rowKey={(s) => s.id} busy={data.loading}
          empty={<Empty title="No sessions match.">A session is listed when someone reaches a device with <code>ssh -J</code> or opens its terminal here.</Empty>} />
      )}
    </>
  );
}
