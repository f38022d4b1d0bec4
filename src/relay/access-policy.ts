/**
 * Who may reach what: the one policy, as pure functions over a user's roles. Values in,
 * decisions out; no store, no sockets. The relay asks it when a channel opens and when it
 * builds each device's key list; the device applies that list itself (see
 * agent/embedded/server.ts), so a relay bug alone cannot let a login through.
 */
import { actionAllowed, loginAllowed, parseForwardTarget, parseSelector, selectorMatches, type Action, type ForwardTarget, type Selector } from '../protocol/access-rules.ts';
import type { AuthorizedKey } from '../protocol/authorized-keys.ts';

/** A role as the store keeps it (see store.ts). */
export interface RoleSpec {
  name: string;
  /** Device selectors; the role covers a device when any one matches. */
  devices: string[];
  /** Login names on covered devices, or `*`. */
  logins: string[];
  /** Forward targets from covered devices; empty: none. */
  forwards: string[];
  /** Relay actions; empty: none. */
  actions: string[];
}

/** The subject of a decision: a user and the roles bound to it, as read from the store just now. */
export interface Subject { user: string; roles: readonly RoleSpec[] }

/** What a decision needs to know of a device. */
export interface DeviceFacts { name: string; labels: Readonly<Record<string, string>> }

/** What a subject may do on one device: the union over the roles that cover it. */
export interface Grant { roles: string[]; logins: string[]; forwards: string[] }

/** A decision; a refusal's message names the rule that refused, in words for the operator. */
export type AccessDecision = { allow: true; roles: string[] } | { allow: false; message: string };

const selectorCache = new Map<string, Selector | null>();
function selector(text: string): Selector | null {
  let s = selectorCache.get(text);
  if (s === undefined) {
    const parsed = parseSelector(text);
    s = 'problem' in parsed ? null : parsed;
    if (selectorCache.size > 10_000) selectorCache.clear();
    selectorCache.set(text, s);
  }
  return s;
}

/** Whether `role` covers `device`. A selector that does not parse covers nothing. */
export function roleCovers(role: RoleSpec, device: DeviceFacts): boolean {
  return role.devices.some((text) => {
    const s = selector(text);
    return s !== null && selectorMatches(s, device.labels);
  });
}

/** What `subject` may do on `device`, or null when no role of theirs covers it. */
export function grantFor(subject: Subject, device: DeviceFacts): Grant | null {
  const covering = subject.roles.filter((r) => roleCovers(r, device));
  if (covering.length === 0) return null;
  const union = (pick: (r: RoleSpec) => string[]) => {
    const all = [...new Set(covering.flatMap(pick))];
    return all.includes('*') ? ['*'] : all;
  };
  return { roles: covering.map((r) => r.name), logins: union((r) => r.logins), forwards: union((r) => r.forwards) };
}

function labelsText(labels: Readonly<Record<string, string>>): string {
  const items = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return items.length ? `labels ${items.join(',')}` : 'no labels';
}

function rolesText(roles: readonly RoleSpec[], what: (r: RoleSpec) => string): string {
  return roles.length ? roles.map((r) => `${r.name}: ${what(r)}`).join('; ') : 'none';
}

/** May `subject` reach `device` at all (as some login)? */
export function mayReach(subject: Subject, device: DeviceFacts): AccessDecision {
  const grant = grantFor(subject, device);
  if (grant === null) {
    return { allow: false, message: `'${subject.user}' may not reach device '${device.name}' (${labelsText(device.labels)}): no role covers it (roles ${rolesText(subject.roles, (r) => `devices ${r.devices.join(' or ')}`)})` };
  }
  if (grant.logins.length === 0) {
    return { allow: false, message: `'${subject.user}' may not log in to device '${device.name}': roles ${grant.roles.join(', ')} cover it but allow no login names` };
  }
  return { allow: true, roles: grant.roles };
}

/**
 * What a refused operator is told about a device name when they may not list every device
 * (no `device.list`): the same words whether the device does not exist or exists outside
 * their roles, so that a refusal reveals neither the device nor its labels. It still names
 * the rule: the caller's roles and what they cover.
 */
export function hiddenDeviceRefusal(subject: Subject, host: string): string {
  return `'${subject.user}' may reach no device named '${host}' (roles ${rolesText(subject.roles, (r) => `devices ${r.devices.join(' or ')}`)}); 'devices' lists the ones you may reach`;
}

/** May `subject` log in to `device` as `login`? */
export function mayLogin(subject: Subject, device: DeviceFacts, login: string): AccessDecision {
  const reach = mayReach(subject, device);
  if (!reach.allow) return reach;
  const grant = grantFor(subject, device)!;
  if (loginAllowed(grant.logins, login)) return { allow: true, roles: grant.roles };
  return { allow: false, message: `'${subject.user}' may not log in to '${device.name}' as '${login}': roles ${grant.roles.join(', ')} allow ${grant.logins.join(', ')}` };
}

/** The forward targets of a grant, parsed; items that do not parse are dropped (they grant nothing). */
export function forwardTargetsOf(items: readonly string[]): ForwardTarget[] {
  return items.flatMap((i) => {
    const t = parseForwardTarget(i);
    return 'problem' in t ? [] : [t];
  });
}

/** May `subject` run relay action `action`? The local CLI (no subject) may run every action. */
export function mayAct(subject: Subject, action: Action): AccessDecision {
  const granting = subject.roles.filter((r) => actionAllowed(r.actions, action));
  if (granting.length) return { allow: true, roles: granting.map((r) => r.name) };
  return { allow: false, message: `'${subject.user}' may not run ${action}: no role grants it (roles ${rolesText(subject.roles, (r) => `actions ${r.actions.join(',') || 'none'}`)})` };
}

/**
 * The operator keys `device` should accept, each with the logins and forward targets it may
 * use there: everyone whose roles cover the device, and nobody else. Only approved devices
 * get keys.
 */
export function authorizedKeysFor(device: (DeviceFacts & { status: string }) | null, users: readonly { name: string; keys: readonly { line: string }[]; roles: readonly RoleSpec[] }[]): AuthorizedKey[] {
  if (device === null || device.status !== 'approved') return [];
  return users.flatMap((u) => {
    const grant = grantFor({ user: u.name, roles: u.roles }, device);
    if (grant === null || grant.logins.length === 0) return [];
    return u.keys.map((k) => ({ user: u.name, line: k.line, logins: grant.logins, forwards: grant.forwards, roles: grant.roles }));
  });
}
