/** Loading a page's data: the latest answer, the error, and a reload; a newer load aborts the one before. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** What `useData` gives a page. `data` keeps the previous answer while a reload runs, so lists do not flash. */
export interface Data<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  /** Loads again (after a change, or when an event says the data is stale). */
  reload(): void;
}

/** Runs `load` now and whenever `deps` change; `load` gets a signal that aborts when it is superseded. */
export function useData<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Data<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    loadRef.current(ctl.signal).then(
      (d) => { if (!ctl.signal.aborted) { setData(d); setError(null); setLoading(false); } },
      (e: unknown) => { if (!ctl.signal.aborted) { setError(e); setLoading(false); } },
    );
    return () => ctl.abort();
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data, error, loading, reload };
}
