/**
 * A device's terminal in the browser: xterm.js (sized to the window by the fit addon) over
 * the relay's terminal WebSocket (terminal-link.ts). The session id goes into the address
 * (?session=ID) and the tab's sessionStorage keeps the output position and the last output,
 * so a reload picks the same shell up with nothing lost; a dropped connection reconnects.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { fetchMe } from '../api.ts';
import { Link, navigate, OPEN_TERMINAL_STATE, replaceQuery, seg, usePlace } from '../router.tsx';
import { TerminalLink, type LinkState } from '../terminal-link.ts';
import { forgetSession, loadSession, saveSession, Tail } from '../terminal-store.ts';

const encoder = new TextEncoder();

/** Moves the keyboard out of the terminal, which otherwise takes every key, Tab included. */
const LEAVE_KEY = { ctrlKey: true, shiftKey: true, code: 'KeyX', label: 'Ctrl+Shift+X' };

function isKey(e: KeyboardEvent, code: string): boolean {
  return e.type === 'keydown' && e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && e.code === code;
}

/**
 * The terminal of device `name` (?login=L for a new session, ?session=ID to resume one). A
 * new session starts at once only when this console's own device page asked for it (its
 * history entry says so); a link from anywhere else (another site, a chat message) first
 * asks, so that following a link never opens a shell, with its audit row and recording, by
 * itself.
 */
export default function TerminalPage({ name }: { name: string }): JSX.Element {
  const { query } = usePlace();
  const login = query.get('login');
  const [go, setGo] = useState(() => query.get('session') !== null || login === null || (history.state as { openTerminal?: unknown } | null)?.openTerminal === true);
  if (go) return <TerminalView name={name} />;
  return (
    <main class="page" id="main">
      <p class="crumbs"><Link href={`/devices/${seg(name)}`}>← {name}</Link></p>
      <section class="card" aria-labelledby="confirm-h">
        <h1 id="confirm-h">Open a terminal on {name} as {login}?</h1>
        <p>A link brought you here. Opening the terminal starts a shell on the device, which is recorded and in the audit log.</p>
        <span class="row">
          <button type="button" class="primary" onClick={() => { history.replaceState(OPEN_TERMINAL_STATE, ''); setGo(true); }}>Open terminal</button>
          <button type="button" onClick={() => navigate(`/devices/${seg(name)}`)}>Not now</button>
        </span>
      </section>
    </main>
  );
}

function TerminalView({ name }: { name: string }): JSX.Element {
  const { query } = usePlace();
  // Read once: the page replaces ?login= by ?session= itself, which must not start anything again.
  const start = useRef({ session: query.get('session'), login: query.get('login') }).current;
  const stored = useRef(start.session === null ? null : loadSession(start.session)).current;
  const login = start.login ?? stored?.login ?? null;
  const boxRef = useRef<HTMLDivElement>(null);
  const barRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const linkRef = useRef<TerminalLink | null>(null);
  const [state, setState] = useState<LinkState>({ kind: 'connecting', attempt: 1 });
  const [sessionId, setSessionId] = useState<string | null>(start.session);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    if (start.session === null && (login === null || login === '')) {
      setState({ kind: 'failed', code: 'FERRY_USAGE', message: 'no login was given: choose one on the device\'s page' });
      return undefined;
    }
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5_000,
      theme: { background: '#000000' },
    });
    termRef.current = term;
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(boxRef.current!);
    fit.fit();

    const tail = new Tail();
    if (stored?.tail) {
      // What this tab showed before the reload; the relay sends what came after it.
      tail.push(stored.tail);
      term.write(stored.tail);
    }
    let id = start.session;
    const keep = () => {
      if (id !== null) saveSession(id, { device: name, login, seq: link.seq, tail: tail.bytes() });
    };
    const link = new TerminalLink({
      device: name, login, sessionId: start.session, seq: stored?.seq ?? 0, cols: term.cols, rows: term.rows,
      output: (data, drawn) => { tail.push(data); term.write(data, drawn); },
      session: (sid) => {
        id = sid;
        setSessionId(sid);
        saveSession(sid, { device: name, login, seq: 0, tail: null });
        replaceQuery(new URLSearchParams({ session: sid }));
      },
      state: (s) => {
        setState(s);
        if (s.kind === 'ended' || s.kind === 'failed' || s.kind === 'closed') {
          if (id !== null) forgetSession(id);
          id = null;
          term.options.cursorBlink = false;
        }
        if (s.kind === 'open') term.focus();
      },
      // The relay answers /me: it is up, so a refused resume means it no longer holds the
      // session. A 401 there also takes the shell to the sign-in page.
      probe: () => fetchMe().then(() => 'gone' as const, () => 'retry' as const),
    });
    linkRef.current = link;

    term.onData((s) => link.input(encoder.encode(s)));
    // Mouse reports and the like: one byte per character, not UTF-8.
    term.onBinary((s) => link.input(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
    term.onResize(({ cols, rows }) => link.resize(cols, rows));
    term.attachCustomKeyEventHandler((e) => {
      if (isKey(e, 'KeyC')) {
        const text = term.getSelection();
        if (text !== '') void navigator.clipboard.writeText(text).catch(() => undefined);
        return false;
      }
      // The browser pastes (the paste event reaches xterm.js, which sends the text).
      if (isKey(e, 'KeyV')) return false;
      if (isKey(e, LEAVE_KEY.code)) {
        barRef.current?.querySelector<HTMLElement>('a, button')?.focus();
        return false;
      }
      return true;
    });

    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => fit.fit());
    });
    observer.observe(boxRef.current!);
    window.addEventListener('pagehide', keep);
    return () => {
      keep();
      window.removeEventListener('pagehide', keep);
      observer.disconnect();
      cancelAnimationFrame(frame);
      link.dispose();
      term.dispose();
      termRef.current = null;
      linkRef.current = null;
    };
  }, []);

  const copy = async () => {
    const text = termRef.current?.getSelection() ?? '';
    if (text === '') { setNote('Select text in the terminal first.'); return; }
    try {
      await navigator.clipboard.writeText(text);
      setNote('Copied.');
    } catch {
      setNote('The browser refused the clipboard: use Ctrl+Shift+C.');
    }
  };
  const paste = async () => {
    try {
      const text = await navigator.clipboard.readText();
      termRef.current?.paste(text);
      termRef.current?.focus();
      setNote(null);
    } catch {
      setNote('The browser refused the clipboard: use Ctrl+Shift+V in the terminal.');
    }
  };
  const live = state.kind === 'open' || state.kind === 'connecting' || state.kind === 'reconnecting';
  const newSession = login !== null ? `/devices/${seg(name)}/terminal?login=${encodeURIComponent(login)}` : null;

  return (
    <>
      <div class="term-bar" ref={barRef}>
        <h1><Link href={`/devices/${seg(name)}`}>{name}</Link>{login !== null && <span class="muted"> as {login}</span>}</h1>
        <span class="term-state" role="status" aria-live="polite"><StateText state={state} /></span>
        <div class="actions">
          <button type="button" onClick={copy} title="Copy the selected text (Ctrl+Shift+C in the terminal)">Copy</button>
          <button type="button" onClick={paste} disabled={state.kind !== 'open'} title="Paste into the terminal (Ctrl+Shift+V in the terminal)">Paste</button>
          <button type="button" class="danger" onClick={() => linkRef.current?.close()} disabled={!live} title="End the shell on the device now">Close session</button>
        </div>
      </div>
      {note !== null && <p class="muted term-note" role="status">{note}</p>}
      <FinalBanner state={state} device={name} again={newSession} />
      <div
        class="term-box"
        ref={boxRef}
        data-state={state.kind}
        data-session={sessionId ?? ''}
        aria-label={`Terminal of ${name}`}
      />
      <p class="muted term-help">
        Ctrl+C goes to the shell. Copy and paste: Ctrl+Shift+C and Ctrl+Shift+V. {LEAVE_KEY.label} leaves the terminal for the buttons above.
        If the connection drops or you reload, the relay keeps the session for a while and this page picks it up; Close session ends it.
      </p>
    </>
  );
}

/** The one-line state in the bar. */
function StateText({ state }: { state: LinkState }): JSX.Element {
  switch (state.kind) {
    case 'connecting': return <>{state.attempt > 1 ? 'Reconnecting…' : 'Connecting…'}</>;
    case 'open': return <span class="ok">● Connected</span>;
    case 'reconnecting': return <span class="warn">Connection lost: reconnecting in {Math.ceil(state.inMs / 1000)} s…</span>;
    case 'ended': return <>Session ended</>;
    case 'failed': return <span class="bad">Not connected</span>;
    case 'closed': return <>Closed</>;
  }
}

/** Refusals that another try cannot change: the banner offers no new session after them. */
const FINAL_REFUSALS: readonly string[] = ['FERRY_PERMISSION_DENIED', 'FERRY_NOT_FOUND', 'FERRY_AUTH_REFUSED', 'FERRY_USAGE'];

/** What ended the session, said plainly, with the way on. */
function FinalBanner({ state, device, again }: { state: LinkState; device: string; again: string | null }): JSX.Element | null {
  if (state.kind !== 'ended' && state.kind !== 'failed' && state.kind !== 'closed') return null;
  let text: JSX.Element;
  if (state.kind === 'ended') {
    text = <>The session ended{state.code !== null ? <>: the shell exited with code {state.code}</> : state.signal !== null ? <>: the shell was killed by {state.signal}</> : null}.</>;
  } else if (state.kind === 'closed') {
    text = <>You closed the session.</>;
  } else {
    text = <>{state.message.charAt(0).toUpperCase() + state.message.slice(1)} <code class="code">{state.code}</code></>;
  }
  return (
    <div class={state.kind === 'failed' ? 'banner banner-error' : 'banner banner-info'} role={state.kind === 'failed' ? 'alert' : 'status'}>
      <p>{text}</p>
      <span class="row">
        {again !== null && !(state.kind === 'failed' && FINAL_REFUSALS.includes(state.code)) && <button type="button" class="primary" onClick={() => { location.assign(again); }}>Open a new session</button>}
        <button type="button" onClick={() => navigate(`/devices/${seg(device)}`)}>Back to {device}</button>
      </span>
    </div>
  );
}
