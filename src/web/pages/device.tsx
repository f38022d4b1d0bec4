/**
 * A device's page: what the relay knows of it (live over /api/v1/events), its labels, the
 * logins this user's roles allow on it, and the way into its terminal, or why there is none.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, events, get, isRemoved } from '../api.ts';
import type { DeviceDetail, DeviceView } from '../api-types.ts';
import { CopyButton, Empty, ErrorBanner, Labels, OnlineBadge, StatusBadge, Time } from '../components/index.ts';
import { Link, navigate, OPEN_TERMINAL_STATE, seg } from '../router.tsx';
import { can, useMe } from '../session.ts';
import { useData } from '../use-data.ts';

/** The login offered first: the first the roles name exactly, else the user's own name when a pattern allows any. */
function firstLogin(logins: string[], user: string): string {
  return logins.find((l) => !/[*?]/.test(l)) ?? (logins.length > 0 ? user : '');
}

/** Draws the page of device `name`. */
export default function DevicePage({ name }: { name: string }): JSX.Element {
  const me = useMe();
  const { data, error, reload } = useData<DeviceDetail>((signal) => get<DeviceDetail>(`/devices/${seg(name)}`, signal), [name]);
  const [device, setDevice] = useState<DeviceView | null>(null);
  useEffect(() => setDevice(data?.device ?? null), [data]);
  // Online, offline, approval and labels change while the page is open; whether the console
  // is available follows them, so the detail is loaded again too.
  const [removed, setRemoved] = useState(false);
  useEffect(() => events({
    device: (d) => {
      if (d.name !== name) return;
      if (isRemoved(d)) { setRemoved(true); return; }
      setDevice(d);
      reload();
    },
    resync: reload,
  }), [name]);

  if (removed) {
    return (
      <>
        <p><Link href="/">← Devices</Link></p>
        <h1>{name}</h1>
        <div class="banner banner-info" role="status"><p>This device was removed from the relay. It must enrol again with a new token to come back.</p></div>
      </>
    );
  }

  if (error !== null && data === null) {
    return (
      <>
        <p><Link href="/">← Devices</Link></p>
        <h1>{name}</h1>
        <ErrorBanner error={error} onRetry={reload} />
      </>
    );
  }
  if (data === null || device === null) return <p class="muted" role="status">Loading…</p>;
  const sshCommand = `ssh -J ${me.user}@${me.relay.sshAddress} ${firstLogin(data.logins, me.user) || 'LOGIN'}@${device.name}`;

  return (
    <>
      <p><Link href="/">← Devices</Link></p>
      <div class="row page-head">
        <h1>{device.name}</h1>
        <span class="row"><OnlineBadge online={device.online} /> <StatusBadge status={device.status} /></span>
      </div>
      <ErrorBanner error={error} onRetry={reload} />
      <div class="cards">
        <section class="card" aria-labelledby="terminal-h">
          <h2 id="terminal-h">Terminal</h2>
          <TerminalForm name={device.name} detail={data} user={me.user} />
        </section>
        <section class="card" aria-labelledby="about-h">
          <h2 id="about-h">Details</h2>
          <dl class="facts">
            <dt>Online</dt>
            <dd>{device.online ? <>since <Time at={device.connectedSince} exact /></> : 'no'}</dd>
            <dt>Last seen</dt>
            <dd><Time at={device.lastSeen} never="never" /></dd>
            {!device.online && <><dt>Disconnect reason</dt><dd>{device.lastDisconnectReason ?? <span class="muted">—</span>}</dd></>}
            <dt>Address</dt>
            <dd>{device.remoteAddress ?? <span class="muted">—</span>}</dd>
            <dt>Agent</dt>
            <dd>{device.agentVersion ?? <span class="muted">not known</span>}</dd>
            <dt>Key</dt>
            <dd><code>{device.keyFingerprint}</code></dd>
            {device.cloned === true && <><dt>Cloned</dt><dd class="bad">Two machines use this device's identity: {device.cloneAddresses.join(', ')}</dd></>}
            <dt>Labels</dt>
            <dd>{can(me, 'device.label') ? <LabelEditor device={device} onChanged={reload} /> : <Labels labels={device.labels} />}</dd>
          </dl>
          <DeviceActions device={device} onChanged={reload} />
        </section>
        <section class="card" aria-labelledby="logins-h">
          <h2 id="logins-h">Logins you may use</h2>
          {data.logins.length === 0
            ? <Empty title="None.">Your roles let you see this device, not log in to it.</Empty>
            : <ul class="plain">{data.logins.map((l) => <li key={l}><code>{l}</code>{l === '*' && <span class="muted"> (any login)</span>}</li>)}</ul>}
          {data.logins.length > 0 && (
            <>
              <p class="muted">With OpenSSH:</p>
              <div class="row"><pre class="command" id="ssh-command"><code>{sshCommand}</code></pre><CopyButton text={sshCommand} fallbackId="ssh-command" /></div>
            </>
          )}
        </section>
      </div>
    </>
  );
}

/** The login field and the button that opens the terminal, or why the console cannot open one. */
function TerminalForm({ name, detail, user }: { name: string; detail: DeviceDetail; user: string }): JSX.Element {
  const [login, setLogin] = useState(firstLogin(detail.logins, user));
  if (!detail.console.available) {
    return <div class="banner banner-info" role="status"><p>No terminal: {detail.console.why ?? 'the relay cannot open a console session to this device'}.</p></div>;
  }
  const exact = detail.logins.filter((l) => !/[*?]/.test(l));
  const open = (e: Event) => {
    e.preventDefault();
    if (login.trim() !== '') navigate(`/devices/${seg(name)}/terminal?login=${encodeURIComponent(login.trim())}`, false, OPEN_TERMINAL_STATE);
  };
  return (
    <form class="row" onSubmit={open}>
      <label>Log in as
        <input name="login" value={login} onInput={(e) => setLogin(e.currentTarget.value)} list="logins" required autoComplete="off" spellcheck={false} autoCapitalize="off" />
      </label>
      <datalist id="logins">{exact.map((l) => <option key={l} value={l} />)}</datalist>
      <button type="submit" class="primary">Open terminal</button>
    </form>
  );
}

/** Runs one change at a time, with its error; `onChanged` reloads the page's data after it. */
function useChange(onChanged: () => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await api(method, path, body);
      onChanged();
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

/** Approve, revoke and remove, each shown only when the user's roles allow it (the relay checks again). */
function DeviceActions({ device, onChanged }: { device: DeviceView; onChanged(): void }): JSX.Element | null {
  const me = useMe();
  const { busy, error, run } = useChange(onChanged);
  const path = `/devices/${seg(device.name)}`;
  const approve = can(me, 'device.approve') && device.status !== 'approved';
  const revoke = can(me, 'device.revoke') && device.status !== 'revoked';
  const remove = can(me, 'device.remove');
  if (!approve && !revoke && !remove) return null;
  return (
    <div class="device-actions">
      <ErrorBanner error={error} />
      <div class="row">
        {approve && <button type="button" class="primary" disabled={busy} onClick={() => run('POST', `${path}/approve`)}>Approve</button>}
        {revoke && (
          <button type="button" class="danger" disabled={busy} onClick={() => {
            if (confirm(`Revoke ${device.name}? Its link is closed and it cannot connect again until it is approved.`)) void run('POST', `${path}/revoke`);
          }}>Revoke</button>
        )}
        {remove && (
          <button type="button" class="danger" disabled={busy} onClick={async () => {
            if (confirm(`Remove ${device.name}? It must enrol again with a new token to come back.`) && await run('DELETE', path)) navigate('/');
          }}>Remove</button>
        )}
      </div>
    </div>
  );
}

/** The labels, each with a remove button, and a field that adds or changes one (`key=value`). */
function LabelEditor({ device, onChanged }: { device: DeviceView; onChanged(): void }): JSX.Element {
  const { busy, error, run } = useChange(onChanged);
  const [text, setText] = useState('');
  const path = `/devices/${seg(device.name)}/labels`;
  const add = async (e: Event) => {
    e.preventDefault();
    const at = text.indexOf('=');
    if (at <= 0) return;
    if (await run('PATCH', path, { set: { [text.slice(0, at).trim()]: text.slice(at + 1).trim() }, remove: [] })) setText('');
  };
  return (
    <div class="label-editor">
      <span class="labels">
        {Object.entries(device.labels).map(([k, v]) => (
          <span key={k} class="label">{k}={v}
            <button type="button" class="label-remove" disabled={busy} aria-label={`Remove label ${k}`} title={`Remove label ${k}`} onClick={() => run('PATCH', path, { set: {}, remove: [k] })}>×</button>
          </span>
        ))}
      </span>
      <form class="row" onSubmit={add}>
        <input aria-label="Label to add, as key=value" placeholder="key=value" value={text} onInput={(e) => setText(e.currentTarget.value)} pattern="[^=]+=.*" autoComplete="off" spellcheck={false} />
        <button type="submit" disabled={busy || !text.includes('=')}>Set label</button>
      </form>
      <ErrorBanner error={error} />
    </div>
  );
}
