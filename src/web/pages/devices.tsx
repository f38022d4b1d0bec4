/**
 * The devices page: the fleet one page at a time (the relay filters and pages, so 10,000
 * devices cost one page of rows), with search, label, online and status filters kept in the
 * address bar, and online/offline changes arriving live over /api/v1/events.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { events, get, isRemoved, query } from '../api.ts';
import type { DevicesPage as Page, DeviceView } from '../api-types.ts';
import { Empty, ErrorBanner, Labels, OnlineBadge, Pager, StatusBadge, Table, Time, type Column } from '../components/index.ts';
import { Link, replaceQuery, seg, usePlace } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** Rows per page (the API allows up to 200). */
const PAGE_SIZE = 50;
/** Typing in a filter waits this long before asking the relay. */
const TYPING_MS = 300;
/** At most one reload of the page per this long when events say it changed (a flapping fleet must not hammer the relay). */
const EVENT_RELOAD_MS = 2_000;

/** `k=v` items separated by spaces or commas, as typed in the label filter. */
function labelItems(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}

const COLUMNS: Column<DeviceView>[] = [
  { key: 'name', label: 'Name', cell: (d) => <Link href={`/devices/${seg(d.name)}`}>{d.name}</Link> },
  { key: 'online', label: 'Online', cell: (d) => <OnlineBadge online={d.online} /> },
  { key: 'status', label: 'Status', cell: (d) => <StatusBadge status={d.status} /> },
  {
    key: 'seen', label: 'Last seen',
    cell: (d) => d.online ? <span title={d.connectedSince === null ? undefined : `online since ${new Date(d.connectedSince).toLocaleString()}`}>now</span> : <Time at={d.lastSeen} never="never" />,
  },
  { key: 'reason', label: 'Disconnect reason', wide: true, cell: (d) => d.online || d.lastDisconnectReason === null ? <span class="muted">—</span> : d.lastDisconnectReason },
  { key: 'labels', label: 'Labels', wide: true, cell: (d) => <Labels labels={d.labels} /> },
  { key: 'address', label: 'Address', wide: true, cell: (d) => d.remoteAddress ?? <span class="muted">—</span> },
];

/** Draws the page. */
export default function DevicesPage(): JSX.Element {
  const me = useMe();
  const { query: q } = usePlace();
  const search = q.get('q') ?? '';
  const labels = q.getAll('label');
  const online = q.get('online') ?? '';
  const status = q.get('status') ?? '';
  const offset = Math.max(0, Number(q.get('offset') ?? 0) || 0);

  const [searchText, setSearchText] = useState(search);
  const [labelText, setLabelText] = useState(labels.join(' '));
  const [live, setLive] = useState<boolean | null>(null);

  const key = JSON.stringify([search, labels, online, status, offset]);
  const { data, error, loading, reload } = useData<Page>((signal) => get<Page>(`/devices${query({ q: search, label: labels, online, status, offset, limit: PAGE_SIZE })}`, signal), [key]);
  const [rows, setRows] = useState<DeviceView[] | null>(null);
  useEffect(() => setRows(data?.devices ?? null), [data]);

  /** Changes some filters in the address bar; any filter change goes back to the first page. */
  const setFilters = (changes: Record<string, string | string[]>) => {
    const next = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) {
      next.delete(k);
      for (const item of Array.isArray(v) ? v : [v]) if (item !== '') next.append(k, item);
    }
    if (!('offset' in changes)) next.delete('offset');
    replaceQuery(next);
  };

  // The filters follow typing after a pause, without a submit button.
  useEffect(() => {
    if (searchText === search) return undefined;
    const t = setTimeout(() => setFilters({ q: searchText.trim() }), TYPING_MS);
    return () => clearTimeout(t);
  }, [searchText]);
  useEffect(() => {
    if (labelItems(labelText).join(' ') === labels.join(' ')) return undefined;
    const t = setTimeout(() => setFilters({ label: labelItems(labelText) }), TYPING_MS);
    return () => clearTimeout(t);
  }, [labelText]);

  // Live changes: a device on this page is redrawn at once; any change also reloads the page
  // (at most every EVENT_RELOAD_MS), since a device can join or leave it, or move (online first).
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastReload = useRef(0);
  useEffect(() => {
    const soon = () => {
      if (reloadTimer.current !== null) return;
      const wait = Math.max(0, lastReload.current + EVENT_RELOAD_MS - Date.now());
      reloadTimer.current = setTimeout(() => { reloadTimer.current = null; lastReload.current = Date.now(); reload(); }, wait);
    };
    const stop = events({
      device: (d) => {
        setRows((current) => (isRemoved(d) ? current?.filter((r) => r.name !== d.name) : current?.map((r) => (r.name === d.name ? d : r))) ?? current);
        soon();
      },
      resync: soon,
      connected: (up) => {
        setLive(up);
        // Whatever happened while the stream was down is in a fresh page.
        if (up) soon();
      },
    });
    return () => { stop(); if (reloadTimer.current !== null) clearTimeout(reloadTimer.current); };
  }, []);

  const filtered = search !== '' || labels.length > 0 || online !== '' || status !== '';
  const clear = () => { setSearchText(''); setLabelText(''); replaceQuery(new URLSearchParams()); };
  const empty = filtered
    ? <Empty title="No device matches these filters."><button type="button" onClick={clear}>Clear the filters</button></Empty>
    : <Empty title="No devices yet.">{can(me, 'token.create') ? <>Make an enrollment token on the <Link href="/enroll">Enroll</Link> page and run the agent command it gives on the device.</> : 'An administrator enrols devices; ask one for access to yours.'}</Empty>;

  return (
    <>
      <div class="row page-head">
        <h1>Devices</h1>
        <span class="muted" role="status">
          {data !== null && `${data.visible.toLocaleString()} visible to you`}
          {live === false && ' · live updates reconnecting…'}
          {live === true && ' · live'}
        </span>
      </div>
      <form class="toolbar" role="search" onSubmit={(e) => { e.preventDefault(); setFilters({ q: searchText.trim(), label: labelItems(labelText) }); }}>
        <label class="grow">Search by name
          <input type="search" name="q" value={searchText} onInput={(e) => setSearchText(e.currentTarget.value)} placeholder="garage" autoComplete="off" spellcheck={false} />
        </label>
        <label class="grow">Labels
          <input type="text" name="label" value={labelText} onInput={(e) => setLabelText(e.currentTarget.value)} placeholder="site=lyon role=camera" autoComplete="off" spellcheck={false} />
        </label>
        <label>Online
          <select name="online" value={online} onChange={(e) => setFilters({ online: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
        <label>Status
          <select name="status" value={status} onChange={(e) => setFilters({ status: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="approved">approved</option>
            <option value="pending">pending</option>
            <option value="revoked">revoked</option>
          </select>
        </label>
      </form>
      <ErrorBanner error={error} onRetry={reload} title="The devices could not be listed" />
      {rows === null && error === null && <p class="muted" role="status">Loading…</p>}
      {rows !== null && (
        <>
          <Table caption="Devices" columns={COLUMNS} rows={rows} rowKey={(d) => d.name} empty={empty} busy={loading} />
          {data !== null && data.total > 0 && <Pager offset={data.offset} limit={data.limit} total={data.total} onChange={(o) => setFilters({ offset: o === 0 ? '' : String(o) })} label="Device pages" />}
        </>
      )}
    </>
  );
}
