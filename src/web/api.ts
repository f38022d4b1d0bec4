/**
 * The console's client for the relay's HTTP API (/api/v1, docs/api.md): JSON in and out, the
 * CSRF header on every change, errors as ApiError with the relay's stable code, and the
 * server-sent event stream of device and session changes.
 */
import type { DeviceView, Me, SessionView } from './api-types.ts';

/** Where the API lives, on the console's own origin. */
const BASE = '/api/v1';

/** A refused or failed API call: the HTTP status and the relay's `{ error: { code, message } }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Sent when a call finds the session gone (401), so that the shell can go to the sign-in page. */
export const SIGNED_OUT_EVENT = 'ferry:signed-out';

let csrfToken: string | null = null;

/** Remembers the session's CSRF token (from /me or the sign-in answer) for the calls that change something. */
export function setCsrf(token: string | null): void {
  csrfToken = token;
}

/** A value for `query()`: absent values are left out; arrays repeat the key (label=a=1&label=b=2). */
export type QueryValue = string | number | boolean | null | undefined | readonly string[];

/** `?k=v&…` from the values that are set, or '' when none is. */
export function query(params: Record<string, QueryValue>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const item of v) q.append(k, item);
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** Calls `METHOD /api/v1PATH` with an optional JSON body; resolves with the JSON answer (undefined for 204). */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // The relay refuses every change without it (docs/security.md, CSRF); a GET needs none.
  if (method !== 'GET' && csrfToken !== null) headers['x-ferry-csrf'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(BASE + path, { method, headers, body: body === undefined ? null : JSON.stringify(body), credentials: 'same-origin', signal: signal ?? null });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'FERRY_CONNECT_FAILED', 'the relay did not answer: check your network, or whether the relay is running');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    // A proxy's HTML error page, say: reported below with the status.
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const error = new ApiError(res.status, e?.code ?? 'FERRY_HTTP', e?.message ?? `the relay answered ${res.status} ${res.statusText} to ${method} ${path}`);
    // Only a session that was there can end; a first visit's 401 from /me is just "not signed in".
    if (res.status === 401 && csrfToken !== null) window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT, { detail: error }));
    throw error;
  }
  return json as T;
}

/** GET, for the common case. */
export function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return api<T>('GET', path, undefined, signal);
}

/** The signed-in user, or null when no session is (401); other failures throw. Remembers the CSRF token. */
export async function fetchMe(): Promise<Me | null> {
  try {
    const me = await get<Me>('/me');
    setCsrf(me.csrf);
    return me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

/** A device event: the device as it is now, or that it was removed. */
export type DeviceEvent = DeviceView | { name: string; removed: true };

/** Whether a device event says the device is gone. */
export function isRemoved(d: DeviceEvent): d is { name: string; removed: true } {
  return 'removed' in d && d.removed === true;
}

/** What `events()` reports: devices and sessions that changed, and whether the stream is connected. */
export interface EventHandlers {
  device?(d: DeviceEvent): void;
  session?(s: SessionView): void;
  /** Users, roles or another process changed things: what the page shows may be stale, read it again. */
  resync?(): void;
  /** true when the stream (re)connects, false when it drops; the browser reconnects by itself. */
  connected?(up: boolean): void;
}

/** Listens to GET /api/v1/events (server-sent events); returns the function that stops listening. */
export function events(handlers: EventHandlers): () => void {
  const source = new EventSource(`${BASE}/events`, { withCredentials: true });
  const parse = (kind: 'device' | 'session') => (e: MessageEvent<string>) => {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    if (kind === 'device') handlers.device?.(data as DeviceEvent);
    else handlers.session?.(data as SessionView);
  };
  source.addEventListener('device', parse('device') as EventListener);
  source.addEventListener('session', parse('session') as EventListener);
  source.addEventListener('resync', () => handlers.resync?.());
  source.addEventListener('open', () => handlers.connected?.(true));
  source.addEventListener('error', () => handlers.connected?.(false));
  return () => source.close();
}

/** The message to show for a failure: the relay's message for an ApiError, else the error's own. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
