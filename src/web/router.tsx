/**
 * The console's page navigation: the History API (pushState, popstate) and a hook that
 * re-renders on every change. The relay serves index.html for every page path, so a reload or
 * a pasted link lands on the same page.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** Where the console is: the path and the query of the address bar. */
export interface Place { path: string; query: URLSearchParams }

const listeners = new Set<() => void>();

function here(): Place {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

window.addEventListener('popstate', () => { for (const l of [...listeners]) l(); });

/** The history state with which the device page opens a terminal: the terminal page then starts it without asking. */
export const OPEN_TERMINAL_STATE = { openTerminal: true } as const;

/** Goes to `to` (a path with an optional query) as a new history entry, or in place with `replace`; `state` is the entry's. */
export function navigate(to: string, replace = false, state: unknown = null): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(state, '', to);
  else history.pushState(state, '', to);
  for (const l of [...listeners]) l();
}

/** Changes the query of the current page in place (no history entry): filters, paging, the terminal's session id. */
export function replaceQuery(params: URLSearchParams): void {
  const s = params.toString();
  navigate(location.pathname + (s === '' ? '' : `?${s}`), true);
}

/** The current place; the component re-renders when it changes. */
export function usePlace(): Place {
  const [place, setPlace] = useState(here);
  useEffect(() => {
    const update = () => setPlace(here());
    listeners.add(update);
    return () => { listeners.delete(update); };
  }, []);
  return place;
}

/** The parameters of `pattern` (`/devices/:name`) in `path`, decoded, or null when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  // A trailing slash is the same page ('/devices/x/' is '/devices/x'); '/' stays itself.
  const want = pattern.split('/');
  const got = (path.length > 1 ? path.replace(/\/+$/, '') : path).split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (w.startsWith(':')) {
      if (g === '') return null;
      try {
        params[w.slice(1)] = decodeURIComponent(g);
      } catch {
        return null;
      }
    } else if (w !== g) return null;
  }
  return params;
}

/** A link inside the console: a plain <a> (so keyboard, middle click and "open in new tab" work) that navigates without a reload. */
export function Link(props: { href: string; children: ComponentChildren } & Omit<JSX.HTMLAttributes<HTMLAnchorElement>, 'href'>): JSX.Element {
  const { href, children, onClick, ...rest } = props;
  const click = (e: JSX.TargetedMouseEvent<HTMLAnchorElement>) => {
    if (typeof onClick === 'function') onClick(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={click} {...rest}>{children}</a>;
}

/** A path segment made safe to put in a URL (device names are DNS labels, but recording ids and the like are not ours to trust). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}
