/**
 * The console's shell: who is signed in (GET /api/v1/me), the page for the address bar, the
 * header with its navigation (only the pages this user's roles open), and sign-out. Every
 * page but /login is drawn inside it.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Action } from '../protocol/access-rules.ts';
import type { ConsolePage } from '../protocol/console-pages.ts';
import { api, fetchMe, setCsrf, SIGNED_OUT_EVENT } from './api.ts';
import type { Me } from './api-types.ts';
import { ErrorBanner } from './components/index.ts';
import AuditPage from './pages/audit.tsx';
import DevicePage from './pages/device.tsx';
import DevicesPage from './pages/devices.tsx';
import EnrollPage from './pages/enroll.tsx';
import LoginPage from './pages/login.tsx';
import NotFoundPage from './pages/not-found.tsx';
import RecordingsPage from './pages/recordings.tsx';
import RolesPage from './pages/roles.tsx';
import SessionsPage from './pages/sessions.tsx';
import UsersPage from './pages/users.tsx';
import { lazyPage } from './lazy-page.tsx';
import { Link, matchPath, navigate, usePlace } from './router.tsx';
import { can, MeContext } from './session.ts';

const TerminalPage = lazyPage(() => import('./pages/terminal.tsx'));
const RecordingPage = lazyPage(() => import('./pages/recording.tsx'));

/** A page of the console: its title, how to draw it, and its place in the navigation, if any. */
interface PageRoute {
  title(params: Record<string, string>): string;
  draw(params: Record<string, string>): JSX.Element;
  /** In the header: the label, and the action that opens the page (none: everyone signed in). */
  nav?: { label: string; action?: Action };
  /** The terminal fills the window: no page margins. */
  full?: boolean;
}

/**
 * Every page but /login, by its path in protocol/console-pages.ts (the relay serves index.html
 * at exactly those, and the type makes this table name each one). Each page component takes
 * its route's parameters as props and reads the query itself (usePlace), so a page can be
 * linked to and reloaded with its filters.
 */
const ROUTES: Record<Exclude<ConsolePage, '/login'>, PageRoute> = {
  '/': { title: () => 'Devices', draw: () => <DevicesPage />, nav: { label: 'Devices' } },
  '/devices/:name': { title: (p) => p.name!, draw: (p) => <DevicePage key={p.name} name={p.name!} /> },
  '/devices/:name/terminal': { title: (p) => `Terminal · ${p.name}`, draw: (p) => <TerminalPage key={p.name} name={p.name!} />, full: true },
  '/sessions': { title: () => 'Sessions', draw: () => <SessionsPage />, nav: { label: 'Sessions' } },
  '/recordings': { title: () => 'Recordings', draw: () => <RecordingsPage />, nav: { label: 'Recordings', action: 'recording.read' } },
  '/recordings/:id': { title: () => 'Recording', draw: (p) => <RecordingPage key={p.id} id={p.id!} /> },
  '/audit': { title: () => 'Audit log', draw: () => <AuditPage />, nav: { label: 'Audit', action: 'audit.read' } },
  '/enroll': { title: () => 'Enroll devices', draw: () => <EnrollPage />, nav: { label: 'Enroll', action: 'token.create' } },
  '/users': { title: () => 'Users', draw: () => <UsersPage />, nav: { label: 'Users', action: 'user.list' } },
  '/roles': { title: () => 'Roles', draw: () => <RolesPage />, nav: { label: 'Roles', action: 'role.list' } },
};
const ENTRIES = Object.entries(ROUTES) as [Exclude<ConsolePage, '/login'>, PageRoute][];

/** The page that `path` names, with its parameters; null: no such page. */
function route(path: string): { r: PageRoute; params: Record<string, string> } | null {
  for (const [pattern, r] of ENTRIES) {
    const params = matchPath(pattern, path);
    if (params) return { r, params };
  }
  return null;
}

/** Whether the navigation item `href` is the section the user is in (the devices section holds each device's pages). */
function current(href: string, path: string): boolean {
  return href === '/' ? path === '/' || path.startsWith('/devices/') : path === href || path.startsWith(`${href}/`);
}

/** The whole console. */
export function App(): JSX.Element {
  const place = usePlace();
  const [me, setMe] = useState<Me | null | 'loading'>('loading');
  const [error, setError] = useState<unknown>(null);
  const [ended, setEnded] = useState(false);
  const mainRef = useRef<HTMLElement>(null);
  const onLogin = place.path === '/login';

  const loadMe = () => {
    setError(null);
    fetchMe().then(setMe, setError);
  };
  useEffect(() => {
    if (!onLogin && me === 'loading') loadMe();
  }, [onLogin]);

  // A call that finds the session gone (expired, signed out elsewhere, user removed) ends up here.
  useEffect(() => {
    const signedOut = () => { setCsrf(null); setMe(null); setEnded(true); };
    window.addEventListener(SIGNED_OUT_EVENT, signedOut);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, signedOut);
  }, []);
  useEffect(() => {
    if (me === null && !onLogin) navigate(ended ? '/login?ended=1' : '/login', true);
  }, [me, onLogin, ended]);

  const found = onLogin ? null : route(place.path);
  const title = onLogin ? 'Sign in' : found ? found.r.title(found.params) : 'Not found';
  useEffect(() => { document.title = `${title} · ferry`; }, [title]);
  // After a page change, keyboard and screen-reader users start at the new page, not the old link.
  const firstPath = useRef(place.path);
  useEffect(() => {
    if (place.path !== firstPath.current) mainRef.current?.focus({ preventScroll: true });
    firstPath.current = place.path;
  }, [place.path]);

  if (onLogin) {
    return <LoginPage onSignedIn={(m) => { setEnded(false); setMe(m); navigate('/', true); }} />;
  }
  if (error !== null) return <main class="page"><ErrorBanner title="The console could not load" error={error} onRetry={loadMe} /></main>;
  if (me === 'loading' || me === null) return <main class="page"><p class="muted" role="status">Loading…</p></main>;

  const signOut = async () => {
    try {
      await api('DELETE', '/session');
    } finally {
      setCsrf(null);
      setEnded(false);
      setMe(null);
    }
  };
  const nav = ENTRIES.filter(([, r]) => r.nav && (r.nav.action === undefined || can(me, r.nav.action)));
  return (
    <MeContext.Provider value={me}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <Link class="brand" href="/">ferry</Link>
        <nav class="nav" aria-label="Console">
          <ul>
            {nav.map(([href, r]) => (
              <li key={href}>
                <Link href={href} aria-current={current(href, place.path) ? 'page' : undefined}>{r.nav!.label}</Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class="user" title={`roles: ${me.roles.join(', ') || 'none'}`}>{me.user}</span>
          <button type="button" class="link-button" onClick={signOut}>Sign out</button>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1} class={found?.r.full ? 'page page-full' : 'page'}>
        {found ? found.r.draw(found.params) : <NotFoundPage />}
      </main>
    </MeContext.Provider>
  );
}
