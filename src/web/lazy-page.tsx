/**
 * A page whose code loads when it is first shown: the terminal (xterm.js) and the recording
 * player (asciinema-player) are most of the bundle, and the devices page needs neither.
 */
import type { ComponentType, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBanner } from './components/index.ts';

/** A component that loads `load`'s default export once, showing "Loading…" until then. */
export function lazyPage<P extends object>(load: () => Promise<{ default: ComponentType<P> }>): (props: P) => JSX.Element {
  let loaded: ComponentType<P> | null = null;
  let loading: Promise<void> | null = null;
  return function LazyPage(props: P): JSX.Element {
    const [, redraw] = useState(0);
    const [error, setError] = useState<unknown>(null);
    useEffect(() => {
      if (loaded !== null) return;
      loading ??= load().then((m) => { loaded = m.default; });
      // A failed load (the relay was upgraded and the old file is gone) may succeed after a reload.
      loading.then(() => redraw((n) => n + 1), (err: unknown) => { loading = null; setError(err); });
    }, []);
    if (error !== null) return <ErrorBanner title="This page could not load; reload it" error={error} />;
    if (loaded === null) return <p class="muted" role="status">Loading…</p>;
    const Page = loaded;
    return <Page {...props} />;
  };
}
