/**
 * Enrolment: make a token and copy the exact agent command that uses it; see the devices
 * that enrolled and wait for approval, and approve or reject (remove) each. A device that
 * enrols while the page is open appears at once, from the relay's event stream.
 */
import '../components/forms.css';
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, events, get, query } from '../api.ts';
import type { CreatedToken, DevicesPage, DeviceView, TokenView } from '../api-types.ts';
import { CopyButton, Empty, ErrorBanner, Labels, OnlineBadge, Table, Time, type Column } from '../components/index.ts';
import { labelItems } from '../components/list-input.ts';
import { seg } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** How many pending devices the page lists (the API's most per page). */
const PENDING_LIMIT = 200;

/** The token lifetimes offered; the relay's limit on the longest is LIMITS.tokenMaxTtlMs. */
const TTLS = ['15m', '1h', '1d', '7d'] as const;

/** The lifetime chosen at first: the same as `token create`'s default. */
const DEFAULT_TTL = '1h';

/** The enrolment page (`/enroll`). */
export default function EnrollPage(): JSX.Element {
  const me = useMe();
  // A new token joins the open tokens: their list is drawn anew.
  const [made, setMade] = useState(0);
  return (
    <>
      <h1>Enroll devices</h1>
      {can(me, 'token.create') && <NewToken onCreated={() => setMade((n) => n + 1)} />}
      <Pending mayApprove={can(me, 'device.approve')} mayRemove={can(me, 'device.remove')} />
      {can(me, 'token.list') && <OpenTokens key={made} mayRevoke={can(me, 'token.revoke')} />}
    </>
  );
}

function NewToken({ onCreated }: { onCreated(): void }): JSX.Element {
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const { labels, problems } = labelItems(String(form.get('labels') ?? ''));
    if (problems.length) { setError(new Error(`${problems.join('; ')}: write labels as key=value, separated by commas`)); return; }
    const name = String(form.get('name') ?? '').trim();
    setBusy(true);
    setError(null);
    setCreated(null);
    api<CreatedToken>('POST', '/tokens', { ...(name ? { name } : {}), labels, ttl: String(form.get('ttl')), uses: Number(form.get('uses') || 1) })
      .then((t) => { setCreated(t); onCreated(); }, setError).finally(() => setBusy(false));
  };
  return (
    <section class="panel" aria-labelledby="token-title">
      <h2 id="token-title">New enrollment token</h2>
      <p class="muted">An agent started with the token enrols its device; unless the token approves it, the device then waits below.</p>
      <form class="form" onSubmit={onSubmit}>
        <label>Device name <span class="hint">optional: else the agent's --name or its host name</span>
          <input name="name" autocomplete="off" spellcheck={false} pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?" title="a lowercase DNS label: a-z, 0-9 and -" />
        </label>
        <label>Labels <span class="hint">key=value, separated by commas</span>
          <input name="labels" autocomplete="off" spellcheck={false} placeholder="site=berlin, kind=camera" />
        </label>
        <div class="row">
          <label>Valid for
            <select name="ttl">{TTLS.map((t) => <option key={t} value={t} selected={t === DEFAULT_TTL}>{t}</option>)}</select>
          </label>
          <label>Uses <input name="uses" type="number" min={1} defaultValue="1" inputMode="numeric" size={5} /></label>
        </div>
        <ErrorBanner error={error} />
        <div><button type="submit" class="primary" disabled={busy}>Create token</button></div>
      </form>
      {created && (
        <div class="created" aria-live="polite">
          <p>Run this on the device. The token is shown only now; it expires <Time at={created.expiresAt} exact /> and enrols {created.uses} device{created.uses === 1 ? '' : 's'}.</p>
          <pre class="command" id="agent-command" data-testid="agent-command">{created.agentCommand}</pre>
          <CopyButton text={created.agentCommand} label="Copy command" fallbackId="agent-command" />
        </div>
      )}
    </section>
  );
}

function Pending({ mayApprove, mayRemove }: { mayApprove: boolean; mayRemove: boolean }): JSX.Element {
  const pending = useData((signal) => get<DevicesPage>(`/devices${query({ status: 'pending', limit: PENDING_LIMIT })}`, signal), []);
  const [error, setError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  // Any device change may add or take away a pending device: the list is read again.
  useEffect(() => events({ device: () => pending.reload() }), []);
  const act = (call: Promise<unknown>) => {
    setError(null);
    call.then(() => { setConfirming(null); pending.reload(); }, setError);
  };
  const columns: Column<DeviceView>[] = [
    { key: 'name', label: 'Device', cell: (d) => <strong>{d.name}</strong> },
    { key: 'online', label: 'Link', cell: (d) => <OnlineBadge online={d.online} /> },
    { key: 'from', label: 'From', wide: true, cell: (d) => d.remoteAddress ?? <span class="muted">—</span> },
    { key: 'key', label: 'Key', wide: true, cell: (d) => <code class="fingerprint">{d.keyFingerprint}</code> },
    { key: 'labels', label: 'Labels', wide: true, cell: (d) => <Labels labels={d.labels} /> },
    {
      key: 'act', label: 'Decide', cell: (d) => (
        <span class="row">
          {mayApprove && confirming !== d.name && <button type="button" class="primary" onClick={() => act(api('POST', `/devices/${seg(d.name)}/approve`))} aria-label={`Approve ${d.name}`}>Approve</button>}
          {mayRemove && confirming !== d.name && <button type="button" onClick={() => setConfirming(d.name)} aria-label={`Reject ${d.name}`}>Reject</button>}
          {mayRemove && confirming === d.name && (
            <>
              <button type="button" class="danger" onClick={() => act(api('DELETE', `/devices/${seg(d.name)}`))}>Remove {d.name}</button>
              <button type="button" onClick={() => setConfirming(null)}>Cancel</button>
            </>
          )}
        </span>
      ),
    },
  ];
  return (
    <section class="panel" aria-labelledby="pending-title">
      <h2 id="pending-title">Waiting for approval</h2>
      <p class="muted">A pending device can be reached by nobody. Check its key fingerprint with the device's <code>ferry agent</code> log; reject removes it, and its agent is refused from then on.</p>
      <ErrorBanner error={pending.error ?? error} onRetry={pending.reload} />
      {pending.data && (
        <Table caption="Devices waiting for approval" columns={columns} rows={pending.data.devices} rowKey={(d) => d.name} busy={pending.loading}
          empty={<Empty title="No device is waiting." />} />
      )}
    </section>
  );
}

function OpenTokens({ mayRevoke }: { mayRevoke: boolean }): JSX.Element {
  const tokens = useData((signal) => get<{ tokens: TokenView[] }>('/tokens', signal), []);
  const [error, setError] = useState<unknown>(null);
  // A device that enrols spends a use of its token: the list is read again.
  useEffect(() => events({ device: () => tokens.reload() }), []);
  const revoke = (id: string) => {
    setError(null);
    api('DELETE', `/tokens/${seg(id)}`).then(tokens.reload, setError);
  };
  const columns: Column<TokenView>[] = [
    { key: 'id', label: 'Token', cell: (t) => <code>{t.id}</code> },
    { key: 'name', label: 'Name', cell: (t) => t.name ?? <span class="muted">any</span> },
    { key: 'labels', label: 'Labels', wide: true, cell: (t) => <Labels labels={t.labels} /> },
    { key: 'uses', label: 'Uses left', numeric: true, cell: (t) => t.usesLeft },
    { key: 'exp', label: 'Expires', cell: (t) => <Time at={t.expiresAt} /> },
    { key: 'by', label: 'Made by', wide: true, cell: (t) => t.createdBy },
    ...(mayRevoke ? [{ key: 'revoke', label: 'Revoke', cell: (t: TokenView) => <button type="button" onClick={() => revoke(t.id)} aria-label={`Revoke token ${t.id}`}>Revoke</button> }] : []),
  ];
  return (
    <section class="panel" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Open tokens</h2>
      <ErrorBanner error={tokens.error ?? error} onRetry={tokens.reload} />
      {tokens.data && (
        <Table caption="Tokens that can still enrol a device" columns={columns} rows={tokens.data.tokens} rowKey={(t) => t.id} busy={tokens.loading}
          empty={<Empty title="No token can enrol a device now." />} />
      )}
    </section>
  );
}
