/** Relay users: list, add, remove, bind roles, add and remove keys. */
import { FerryError } from '../../common/errors.ts';
import { parsePublicKey, type PublicKey } from '../../common/ssh-keys.ts';
import { userNameProblem } from '../../protocol/names.ts';
import { principalName } from '../principal.ts';
import type { Store } from '../store.ts';
import { assertSomeoneManagesAccess, badInput, iso, type Operation } from './operation.ts';

/** A user as listed (`users --json`): `role` is the first of `roles`, for scripts written before roles. */
export interface UserView { name: string; role: string | null; roles: string[]; createdAt: string; keys: string[] }

/** Every relay user with its roles and key fingerprints. */
export const listUsers: Operation<Record<string, never>, UserView[]> = {
  name: 'user.list',
  action: 'user.list',
  run(ctx) {
    return ctx.store.listUsers().map((u) => ({ name: u.name, role: u.roles[0] ?? null, roles: u.roles, createdAt: iso(u.createdAt)!, keys: u.keys.map((k) => k.fingerprint) }));
  },
};

function unknownRoles(store: Store, roles: readonly string[]): string[] {
  const known = new Set(store.listRoles().map((r) => r.name));
  return roles.filter((r) => !known.has(r)).map((r) => `no role named '${r}'; 'role ls' lists them (${[...known].join(', ') || 'none yet'})`);
}

function rolesProblems(store: Store, roles: readonly string[]): string[] {
  if (roles.length === 0) return ['give at least one role'];
  const twice = roles.filter((r, i) => roles.indexOf(r) !== i);
  return [...twice.map((r) => `role '${r}' is given twice`), ...unknownRoles(store, roles)];
}

function parseKeys(texts: readonly string[], problems: string[]): PublicKey[] {
  const keys: PublicKey[] = [];
  for (const text of texts) {
    try {
      const key = parsePublicKey(text);
      if (keys.some((other) => other.fingerprint === key.fingerprint)) problems.push(`--key ${key.fingerprint} is given twice`);
      else keys.push(key);
    } catch (err) { problems.push(`--key: ${(err as Error).message}`); }
  }
  return keys;
}

/** A new user: a name, one or more public key lines, and roles (default operator). */
export interface AddUserInput { name: string; keys: string[]; roles?: string[] }

/** Adds a relay user. */
export const addUser: Operation<AddUserInput, { name: string; role: string; roles: string[]; keys: string[] }> = {
  name: 'user.add',
  action: 'user.add',
  targetOf: (i) => i.name,
  run(ctx, principal, input) {
    const problems: string[] = [];
    const p = userNameProblem(input.name);
    if (p) problems.push(p);
    const roles = input.roles ?? ['operator'];
    problems.push(...rolesProblems(ctx.store, roles));
    if (input.keys.length === 0) problems.push("--key is required: the user's public key, e.g. --key \"$(cat ~/.ssh/id_ed25519.pub)\"");
    const keys = parseKeys(input.keys, problems);
    badInput(problems);
    ctx.store.transaction(() => {
      ctx.store.addUser(input.name, roles, keys.map((k) => ({ fingerprint: k.fingerprint, line: k.line })), ctx.now);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'user.add', target: input.name, detail: { roles, keys: keys.map((k) => k.fingerprint) } });
    });
    ctx.onChange?.();
    return { name: input.name, role: roles[0]!, roles, keys: keys.map((k) => k.fingerprint) };
  },
};

function existingUser(store: Store, name: string) {
  const user = store.getUser(name);
  if (!user) throw new FerryError('FERRY_NOT_FOUND', `no user named '${name}'; 'users' lists them`);
  return user;
}

/** Removes a user; their live connections end. */
export const removeUser: Operation<{ name: string }, { name: string; result: 'removed' }> = {
  name: 'user.remove',
  action: 'user.remove',
  targetOf: (i) => i.name,
  run(ctx, principal, { name }) {
    if (principal.kind !== 'local' && name === principal.user) throw new FerryError('FERRY_CONFLICT', 'you cannot remove yourself; ask another admin');
    const user = existingUser(ctx.store, name);
    ctx.store.transaction(() => {
      ctx.store.removeUser(name);
      assertSomeoneManagesAccess(ctx.store);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'user.remove', target: name, detail: { roles: user.roles, keys: user.keys.map((k) => k.fingerprint) } });
    });
    ctx.onChange?.();
    return { name, result: 'removed' };
  },
};

/** Replaces a user's roles; what they may reach changes at once. */
export const setUserRoles: Operation<{ name: string; roles: string[] }, { name: string; roles: string[] }> = {
  name: 'user.role',
  action: 'user.role',
  targetOf: (i) => i.name,
  run(ctx, principal, { name, roles }) {
    const user = existingUser(ctx.store, name);
    badInput(rolesProblems(ctx.store, roles));
    ctx.store.transaction(() => {
      ctx.store.setUserRoles(name, roles);
      assertSomeoneManagesAccess(ctx.store);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'user.role', target: name, detail: { was: user.roles, roles } });
    });
    ctx.onChange?.();
    return { name, roles };
  },
};

/** Adds a key to a user (rotate: add the new one, then remove the old one). */
export const addUserKey: Operation<{ name: string; key: string }, { name: string; key: string }> = {
  name: 'user.key.add',
  action: 'user.key',
  targetOf: (i) => i.name,
  run(ctx, principal, { name, key: text }) {
    existingUser(ctx.store, name);
    const problems: string[] = [];
    const [key] = parseKeys([text], problems);
    badInput(problems);
    ctx.store.transaction(() => {
      ctx.store.addUserKey(name, { fingerprint: key!.fingerprint, line: key!.line });
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'user.key.add', target: name, detail: { key: key!.fingerprint } });
    });
    ctx.onChange?.();
    return { name, key: key!.fingerprint };
  },
};

/** Removes one of a user's keys; connections that logged in with it end. */
export const removeUserKey: Operation<{ name: string; fingerprint: string }, { name: string; key: string; result: 'removed' }> = {
  name: 'user.key.remove',
  action: 'user.key',
  targetOf: (i) => i.name,
  run(ctx, principal, { name, fingerprint }) {
    const user = existingUser(ctx.store, name);
    if (!user.keys.some((k) => k.fingerprint === fingerprint)) {
      throw new FerryError('FERRY_NOT_FOUND', `user '${name}' has no key ${fingerprint}; 'users' lists each user's key fingerprints`);
    }
    ctx.store.transaction(() => {
      ctx.store.removeUserKey(name, fingerprint);
      assertSomeoneManagesAccess(ctx.store);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'user.key.remove', target: name, detail: { key: fingerprint } });
    });
    ctx.onChange?.();
    return { name, key: fingerprint, result: 'removed' };
  },
};
