/** Roles: which devices, logins, forward targets and relay actions a user gets. */
import { FerryError } from '../../common/errors.ts';
import { actionProblem, forwardTargetText, loginProblem, parseForwardTarget, parseSelector } from '../../protocol/access-rules.ts';
import type { RoleSpec } from '../access-policy.ts';
import { principalName } from '../principal.ts';
import { assertSomeoneManagesAccess, badInput, iso, type Operation } from './operation.ts';

const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** Why a role name is not usable, or null. */
export function roleNameProblem(name: string): string | null {
  return ROLE_NAME.test(name) ? null : `role name '${name}' is invalid: use up to 32 of a-z, 0-9, '_' and '-', starting with a letter`;
}

/** A role's parts as given; on edit, the parts left out stay as they are. */
export interface RoleInput { name: string; devices?: string[]; logins?: string[]; forwards?: string[]; actions?: string[] }

/** Checks every part of a role and writes each in its one form (`site = x` → `site=x`), reporting every problem at once. */
export function normalizeRole(spec: RoleSpec): RoleSpec {
  const problems: string[] = [];
  const p = roleNameProblem(spec.name);
  if (p) problems.push(p);
  const devices = spec.devices.map((text) => {
    const s = parseSelector(text);
    if ('problem' in s) { problems.push(s.problem); return text; }
    return s.text;
  });
  for (const l of spec.logins) { const lp = loginProblem(l); if (lp) problems.push(lp); }
  const forwards = spec.forwards.map((text) => {
    const t = parseForwardTarget(text);
    if ('problem' in t) { problems.push(t.problem); return text; }
    return forwardTargetText(t);
  });
  for (const a of spec.actions) { const ap = actionProblem(a); if (ap) problems.push(ap); }
  badInput(problems);
  const unique = (xs: string[]) => [...new Set(xs)];
  return { name: spec.name, devices: unique(devices), logins: unique(spec.logins), forwards: unique(forwards), actions: unique(spec.actions) };
}

/** A role as listed, with the users bound to it. */
export interface RoleView extends RoleSpec { users: string[]; createdAt: string; updatedAt: string }

/** Every role, by name. */
export const listRoles: Operation<Record<string, never>, RoleView[]> = {
  name: 'role.list',
  action: 'role.list',
  run(ctx) {
    const users = ctx.store.listUsers();
    return ctx.store.listRoles().map((r) => ({
      name: r.name, devices: r.devices, logins: r.logins, forwards: r.forwards, actions: r.actions,
      users: users.filter((u) => u.roles.includes(r.name)).map((u) => u.name), createdAt: iso(r.createdAt)!, updatedAt: iso(r.updatedAt)!,
    }));
  },
};

/** Adds a role; devices and logins must be given (possibly empty), forwards and actions default to none. */
export const addRole: Operation<RoleInput, RoleSpec> = {
  name: 'role.add',
  action: 'role.add',
  targetOf: (i) => i.name,
  run(ctx, principal, input) {
    // Devices and logins have no default: a role that reaches nothing says so (`none`).
    badInput([
      ...(input.devices === undefined ? ["give --devices: '*' for every device, a selector like site=berlin,env!=prod, or none"] : []),
      ...(input.logins === undefined ? ["give --logins: login names on the devices (pi,root), '*', or none"] : []),
    ]);
    const role = normalizeRole({ name: input.name, devices: input.devices!, logins: input.logins!, forwards: input.forwards ?? [], actions: input.actions ?? [] });
    if (ctx.store.getRole(role.name)) throw new FerryError('FERRY_CONFLICT', `a role named '${role.name}' exists already: 'role edit ${role.name}' changes it`);
    ctx.store.transaction(() => {
      ctx.store.addRole(role, ctx.now);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'role.add', target: role.name, detail: { ...role } });
    });
    return role;
  },
};

/** Changes the parts of a role that are given; users bound to it get the change at once. */
export const editRole: Operation<RoleInput, RoleSpec> = {
  name: 'role.edit',
  action: 'role.edit',
  targetOf: (i) => i.name,
  run(ctx, principal, input) {
    const was = ctx.store.getRole(input.name);
    if (!was) throw new FerryError('FERRY_NOT_FOUND', `no role named '${input.name}'; 'role ls' lists them`);
    if ([input.devices, input.logins, input.forwards, input.actions].every((x) => x === undefined)) {
      badInput(['give at least one of --devices, --logins, --forward, --actions: what to change']);
    }
    const role = normalizeRole({
      name: was.name, devices: input.devices ?? was.devices, logins: input.logins ?? was.logins,
      forwards: input.forwards ?? was.forwards, actions: input.actions ?? was.actions,
    });
    ctx.store.transaction(() => {
      ctx.store.updateRole(role, ctx.now);
      assertSomeoneManagesAccess(ctx.store);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'role.edit', target: role.name, detail: { was: rules(was), now: rules(role) } });
    });
    ctx.onChange?.();
    return role;
  },
};

/** What a role allows, without its name and dates: an audit row's before and after. */
function rules(r: RoleSpec): Omit<RoleSpec, 'name'> {
  return { devices: r.devices, logins: r.logins, forwards: r.forwards, actions: r.actions };
}

/** Removes a role and its bindings. */
export const removeRole: Operation<{ name: string }, { name: string; result: 'removed'; users: string[] }> = {
  name: 'role.remove',
  action: 'role.remove',
  targetOf: (i) => i.name,
  run(ctx, principal, { name }) {
    const role = ctx.store.getRole(name);
    if (!role) throw new FerryError('FERRY_NOT_FOUND', `no role named '${name}'; 'role ls' lists them`);
    const users = ctx.store.listUsers().filter((u) => u.roles.includes(name)).map((u) => u.name);
    ctx.store.transaction(() => {
      ctx.store.removeRole(name);
      assertSomeoneManagesAccess(ctx.store);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'role.remove', target: name, detail: { users } });
    });
    ctx.onChange?.();
    return { name, result: 'removed', users };
  },
};
