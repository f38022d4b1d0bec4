/**
 * The pieces a role is made of, parsed and matched: device selectors over labels, login
 * names, forward targets and relay actions. Pure: the relay decides with these, and the
 * agent checks the forward targets and logins the relay pushed with the same code.
 */
import { asciiLowerCase } from './names.ts';

// ---------------------------------------------------------------------------------------
// Device selectors: `*`, or terms joined by commas, all of which must hold:
//   key=value   the label is set to value      key!=value  the label is not set to value
//   key         the label is set (any value)   !key        the label is not set
// A role may have several selectors; it covers a device when any one matches.
// ---------------------------------------------------------------------------------------

export type SelectorTerm =
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'has' | 'lacks'; key: string };

/** A parsed selector: null terms mean `*`, every device. */
export interface Selector { text: string; terms: SelectorTerm[] | null }

const LABEL_KEY = /^[a-z0-9]([a-z0-9_./-]{0,61}[a-z0-9])?$/;

/** Parses one selector, or says what is wrong with it. */
export function parseSelector(text: string): Selector | { problem: string } {
  const t = text.trim();
  if (t === '*') return { text: '*', terms: null };
  if (t === '') return { problem: "an empty device selector: give '*' for every device, or terms like site=berlin,env!=prod" };
  const terms: SelectorTerm[] = [];
  for (const raw of t.split(',')) {
    const part = raw.trim();
    const m = /^([^=!]+)(!=|=)(.*)$/.exec(part);
    const key = m ? m[1]!.trim() : part.replace(/^!/, '').trim();
    if (!LABEL_KEY.test(key)) return { problem: `device selector '${text}': '${part}' is not key=value, key!=value, key or !key (keys: lowercase letters, digits, '_', '.', '/', '-')` };
    if (m) terms.push({ op: m[2] === '=' ? 'eq' : 'ne', key, value: m[3]!.trim() });
    else terms.push({ op: part.startsWith('!') ? 'lacks' : 'has', key });
  }
  return { text: terms.map(termText).join(','), terms };
}

function termText(t: SelectorTerm): string {
  return t.op === 'eq' ? `${t.key}=${t.value}` : t.op === 'ne' ? `${t.key}!=${t.value}` : t.op === 'has' ? t.key : `!${t.key}`;
}

/** Whether `selector` matches a device with these labels. */
export function selectorMatches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  if (selector.terms === null) return true;
  return selector.terms.every((t) => {
    const has = Object.prototype.hasOwnProperty.call(labels, t.key);
    switch (t.op) {
      case 'eq': return has && labels[t.key] === t.value;
      case 'ne': return !has || labels[t.key] !== t.value;
      case 'has': return has;
      case 'lacks': return !has;
    }
  });
}

// ---------------------------------------------------------------------------------------
// Login names: `*` (any) or names as a Unix login name is written.
// ---------------------------------------------------------------------------------------

const LOGIN_NAME = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

/** Why a login item (a name or `*`) is not usable, or null. */
export function loginProblem(item: string): string | null {
  return item === '*' || LOGIN_NAME.test(item) ? null : `login '${item}' is not a user name (letters, digits, '_', '.', '-', up to 32) or '*'`;
}

/** Whether `login` is one of `allowed` (or `allowed` has `*`). Exact, case-sensitive, as Unix user names are. */
export function loginAllowed(allowed: readonly string[], login: string): boolean {
  return allowed.includes('*') || allowed.includes(login);
}

// ---------------------------------------------------------------------------------------
// Forward targets (what -L, -D and -W may reach from the device): `*` (anything the
// device's own --allow-forward list lets through), HOST:PORT, HOST:*, ADDR/PREFIX:PORT,
// with [..] around IPv6. Host names match exactly (no DNS); addresses by prefix.
// ---------------------------------------------------------------------------------------

export type ForwardTarget =
  | { kind: 'any' }
  | { kind: 'host'; host: string; port: number | '*' }
  | { kind: 'net'; bytes: number[]; prefix: number; port: number | '*' };

/** Parses one forward target, or says what is wrong with it. */
export function parseForwardTarget(text: string): ForwardTarget | { problem: string } {
  const t = text.trim();
  if (t === '*') return { kind: 'any' };
  const bad = { problem: `forward target '${text}' must be HOST:PORT, HOST:*, ADDRESS/PREFIX:PORT (e.g. 10.0.0.0/24:443; [fd00::/64]:22 for IPv6) or '*'` };
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\*|\d{1,5})$/.exec(t);
  if (!m) return bad;
  const port = m[3] === '*' ? '*' : Number(m[3]);
  if (port !== '*' && (port < 1 || port > 65535)) return bad;
  const hostPart = asciiLowerCase((m[1] ?? m[2])!);
  const slash = hostPart.indexOf('/');
  const addr = parseAddress(slash < 0 ? hostPart : hostPart.slice(0, slash));
  if (addr === null) {
    if (slash >= 0 || !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(hostPart)) return bad;
    return { kind: 'host', host: hostPart, port };
  }
  const bits = addr.length * 8;
  const prefix = slash < 0 ? bits : /^\d{1,3}$/.test(hostPart.slice(slash + 1)) ? Number(hostPart.slice(slash + 1)) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return bad;
  return { kind: 'net', bytes: addr, prefix, port };
}

/** A forward target written back in its usual form (a network with its host bits as given). */
export function forwardTargetText(t: ForwardTarget): string {
  if (t.kind === 'any') return '*';
  const port = String(t.port);
  if (t.kind === 'host') return `${t.host}:${port}`;
  const a = addressText(t.bytes);
  const host = t.prefix === t.bytes.length * 8 ? a : `${a}/${t.prefix}`;
  return t.bytes.length === 16 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Whether a channel to host:port is one of `targets`. `host` is what the client asked for
 * (a name or an address literal); a name never matches an address rule, since the device
 * would resolve it after this check.
 */
export function forwardAllowed(targets: readonly ForwardTarget[], host: string, port: number): boolean {
  const h = asciiLowerCase(host).replace(/^\[|\]$/g, '');
  const addr = parseAddress(h);
  return targets.some((t) => {
    if (t.kind === 'any') return true;
    if (t.port !== '*' && t.port !== port) return false;
    if (t.kind === 'host') return addr === null ? t.host === h : sameBytes(parseAddress(t.host), addr);
    return addr !== null && addr.length === t.bytes.length && inPrefix(addr, t.bytes, t.prefix);
  });
}

function sameBytes(a: number[] | null, b: number[]): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

function inPrefix(addr: number[], net: number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((addr[bit >> 3]! & mask) !== (net[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** The bytes of an IPv4 (4) or IPv6 (16) address literal, or null when `text` is neither. */
export function parseAddress(text: string): number[] | null {
  const v4 = parseIPv4(text);
  if (v4) return v4;
  if (!text.includes(':') || text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  // An embedded IPv4 part (::ffff:1.2.3.4) may only end the address, so only the last half may have one.
  const groups = (s: string, last: boolean): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (last && i === parts.length - 1 && p.includes('.')) {
        const tail = parseIPv4(p);
        if (!tail) return null;
        out.push((tail[0]! << 8) | tail[1]!, (tail[2]! << 8) | tail[3]!);
      } else if (/^[0-9a-f]{1,4}$/i.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1]!, true) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

function addressText(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // The longest run of zero groups (two or more) becomes '::'.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------
// Relay actions: what a role may do on the relay besides reaching devices. `*` is every
// action, `GROUP.*` every action of a group. Reading `whoami`, `devices` and `ssh-config`
// needs no action: they show only what the caller may reach.
// ---------------------------------------------------------------------------------------

export const ACTIONS = [
  'token.create', 'token.list', 'token.revoke',
  'device.list', 'device.approve', 'device.revoke', 'device.remove', 'device.label',
  'user.list', 'user.add', 'user.remove', 'user.role', 'user.key',
  'role.list', 'role.add', 'role.edit', 'role.remove',
  'audit.read', 'audit.verify',
  'recording.read',
] as const;
export type Action = typeof ACTIONS[number];

/** Why an action item (an action, `GROUP.*` or `*`) is not known, or null. */
export function actionProblem(item: string): string | null {
  if (item === '*' || (ACTIONS as readonly string[]).includes(item)) return null;
  if (item.endsWith('.*') && ACTIONS.some((a) => a.startsWith(item.slice(0, -1)))) return null;
  const groups = [...new Set(ACTIONS.map((a) => a.split('.')[0]))].map((g) => `${g}.*`);
  return `action '${item}' is not known: use one of ${ACTIONS.join(', ')}, a group (${groups.join(', ')}) or '*'`;
}

/** Whether `granted` (items as in a role) includes `action`. */
export function actionAllowed(granted: readonly string[], action: Action): boolean {
  return granted.some((g) => g === '*' || g === action || (g.endsWith('.*') && action.startsWith(g.slice(0, -1))));
}
