/**
 * What a device's built-in SSH server reports to the relay about its own sessions, so that a
 * ProxyJump session the relay cannot read is still on the audit record. JSON lines, agent to
 * relay, on the same exec channel that carries the operator keys the other way
 * (authorized-keys.ts). Pure; the relay checks every field and records the rest as the
 * device's word, marked so.
 */

/** The events a device reports. */
export const DEVICE_EVENTS = [
  /** An operator logged in: operator, login, key (fingerprint), from. */
  'login',
  /** A login was refused by the device's own list: operator (when the key is known), login, key, why. */
  'login.refused',
  /** A session started: session (id), kind (shell|exec|subsystem), command or subsystem, pty. */
  'session.start',
  /** A session ended: session, exit (status) or signal, durationMs, and why when the device ended it. */
  'session.end',
  /** A file read or written over SFTP (or legacy scp): session, path, op (read|write), bytes. */
  'file',
  /** A forward (-L/-D/-W) opened: forward (id), dest (HOST:PORT). */
  'forward.start',
  /** A forward ended: forward, dest, bytesIn, bytesOut, durationMs, why. */
  'forward.end',
  /** A forward was refused: dest, why. */
  'forward.refused',
] as const;
export type DeviceEvent = typeof DEVICE_EVENTS[number];

/** A detail value: a short string, a number, a boolean or null. */
export type ReportValue = string | number | boolean | null;

/** One report. `operator` and `login` are present on every event that has them. */
export interface DeviceReport {
  event: DeviceEvent;
  /** When it happened on the device (ms since the epoch); the relay records its own time too. */
  at: number;
  operator: string | null;
  login: string | null;
  detail: Record<string, ReportValue>;
}

/** Longest report line the relay reads; a longer one is dropped (and the channel read on). */
export const MAX_REPORT_LINE = 8 * 1024;
/** Most detail fields in one report, and the longest string value (a path, a command). */
const MAX_FIELDS = 16;
const MAX_STRING = 1024;

/** Encodes one report as a line. Strings longer than the relay takes are cut. */
export function encodeDeviceReport(r: DeviceReport): string {
  const detail: Record<string, ReportValue> = {};
  for (const [k, v] of Object.entries(r.detail).slice(0, MAX_FIELDS)) detail[k] = typeof v === 'string' ? v.slice(0, MAX_STRING) : v;
  return JSON.stringify({ ...r, detail }) + '\n';
}

/** Parses one line, or returns null when it is not a report the relay will record. */
export function parseDeviceReport(line: string): DeviceReport | null {
  if (line.length > MAX_REPORT_LINE) return null;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return null;
  if (!(DEVICE_EVENTS as readonly string[]).includes(o.event as string)) return null;
  if (typeof o.at !== 'number' || !Number.isFinite(o.at)) return null;
  const name = (v: unknown) => v === null || v === undefined ? null : typeof v === 'string' && v.length <= 64 ? v : undefined;
  const operator = name(o.operator);
  const login = name(o.login);
  if (operator === undefined || login === undefined) return null;
  const d = o.detail;
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return null;
  const entries = Object.entries(d as Record<string, unknown>);
  if (entries.length > MAX_FIELDS) return null;
  const detail: Record<string, ReportValue> = {};
  for (const [k, v] of entries) {
    if (!/^[a-zA-Z][a-zA-Z0-9]{0,31}$/.test(k)) return null;
    if (v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) detail[k] = v;
    else if (typeof v === 'string' && v.length <= MAX_STRING) detail[k] = v;
    else return null;
  }
  return { event: o.event as DeviceEvent, at: o.at, operator, login, detail };
}
