/**
 * A device's page: what the relay knows of it (live over /api/v1/events), its labels, the
 * logins this user's roles allow on it, and the way into its terminal, or why there is none.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { events, get } from '../api.ts';
import type { DeviceDetail, DeviceView } from '../api-types.ts';
import { CopyButton, Empty, ErrorBanner, Labels, OnlineBadge, StatusBadge, Time } from '../components/index.ts';
import { Link, navigate, seg } from '../router.tsx';
import { useMe } from '../session.ts';
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
  useEffect(() => events({
    device: (d) => {
      if (d.name !== name) return;
      setDevice(d);
      reload();
    },
  }), [name]);

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
            <dd><Labels labels={device.labels} /></dd>
          </dl>
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
    if (login.trim() !== '') navigate(`/devices/${seg(name)}/terminal?login=${encodeURIComponent(login.trim())}`);
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
