/**
 * What every operation shares: the context it runs in, how it names its permission, and
 * `perform`, the one way to run one, which checks that permission against the principal's
 * roles as the store has them now (so a role change applies to the very next call).
 */
import { FerryError } from '../../common/errors.ts';
import type { Action } from '../../protocol/access-rules.ts';
import { mayAct, type RoleSpec, type Subject } from '../access-policy.ts';
import type { CloneEpisode } from '../clone-detector.ts';
import type { ReachInfo } from '../sessions.ts';
import { principalName, type Principal } from '../principal.ts';
import type { Store } from '../store.ts';

/** What an operation may touch, given by the front end that runs it. */
export interface OperationContext {
  store: Store;
  now: number;
  relay: {
    publicAddress: string; fingerprint: string; hostKeyLine?: string; consoleUrl?: string | null;
    /** What tokens carry: the endpoints agents dial (relay-endpoint.ts), in order; [publicAddress] when absent. */
    agentEndpoints?: readonly string[];
    /** The pin of the relay's own self-signed TLS key (token.ts TLS_PIN), or null. */
    tlsPin?: string | null;
  };
  /** The data dir, where recordings are; absent where the front end has none (then they cannot be read). */
  dataDir?: string;
  /**
   * Called after a change that live connections must follow: with a device's name when that
   * device was approved, revoked or removed, without one when users, keys or roles changed.
   */
  onChange?: (device?: string) => void;
  /** The running relay's live reaches (sessions.ts); absent for the local CLI, which then lists past sessions only. */
  liveReaches?: () => readonly ReachInfo[];
  /** The running relay's clone episodes (kept in its memory only); absent for the local CLI, which then cannot tell. */
  cloneOf?: (device: string) => CloneEpisode | null;
}

/** One operation: typed input and a principal in, a typed result out (or a FerryError). */
export interface Operation<I, R> {
  /** The audit and log name, e.g. `device.revoke`. */
  readonly name: string;
  /**
   * The action a principal's roles must grant, or null for reads that show only what the
   * principal may reach (whoami, devices, ssh-config).
   */
  readonly action: Action | null;
  /** What a refusal's audit row names as its target. */
  targetOf?(input: I): string | null;
  /** The work itself; `perform` has checked the action already. */
  run(ctx: OperationContext, principal: Principal, input: I): R;
}

/** The subject the policy decides for: the local CLI has every action, as the data dir's owner has anyway. */
export function subjectOf(ctx: OperationContext, principal: Principal): Subject {
  return principal.kind === 'local' ? { user: principal.user, roles: [LOCAL_ROLE] } : userSubject(ctx.store, principal.user);
}

/** A relay user's subject: their roles as the store has them now (none for an unknown user). */
export function userSubject(store: Store, user: string): Subject {
  return { user, roles: (store.getUser(user)?.roles ?? []).flatMap((name) => store.getRole(name) ?? []) };
}

/** The role the local CLI acts with: every device, login, forward and action. */
export const LOCAL_ROLE: RoleSpec = { name: 'local', devices: ['*'], logins: ['*'], forwards: ['*'], actions: ['*'] };

/**
 * Throws unless `principal` may run `op`. A refusal names the rule (mayAct's message), is
 * written to the audit log as `action.refused`, and is thrown as FERRY_PERMISSION_DENIED.
 */
export function authorize<I, R>(ctx: OperationContext, principal: Principal, op: Operation<I, R>, input: I): void {
  if (op.action === null) return;
  const decision = mayAct(subjectOf(ctx, principal), op.action);
  if (decision.allow) return;
  ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'action.refused', target: op.targetOf?.(input) ?? null, detail: { action: op.action, why: decision.message } });
  throw new FerryError('FERRY_PERMISSION_DENIED', decision.message);
}

/** Runs `op` as `principal`, after `authorize`: the one way every front end runs an operation. */
export function perform<I, R>(ctx: OperationContext, principal: Principal, op: Operation<I, R>, input: I): R {
  authorize(ctx, principal, op, input);
  return op.run(ctx, principal, input);
}

/** A bad input: the front end shows it as a usage error. Several problems are told at once. */
export function badInput(problems: readonly string[]): void {
  if (problems.length) throw new FerryError('FERRY_USAGE', problems.join('\n'));
}

/**
 * Throws FERRY_CONFLICT unless some user with a key may still run role.edit and user.role.
 * Called inside the transaction of a change to users, keys, roles or bindings, after the
 * change, so that throwing undoes it.
 */
export function assertSomeoneManagesAccess(store: Store): void {
  const ok = store.listSubjects().some((s) => {
    const subject = { user: s.name, roles: s.roles };
    return s.keys.length > 0 && mayAct(subject, 'role.edit').allow && mayAct(subject, 'user.role').allow;
  });
  if (!ok) {
    throw new FerryError('FERRY_CONFLICT', 'this would leave nobody who can manage access (no user with a key whose roles grant role.edit and user.role): give such a role to another user first');
  }
}

/** An ISO time, or null. */
export function iso(ms: number | null): string | null { return ms === null ? null : new Date(ms).toISOString(); }
