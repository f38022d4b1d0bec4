/** Enrollment tokens: create, list, revoke. */
import { createHash, randomBytes } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { deviceNameProblem, parseLabels } from '../../protocol/names.ts';
import { encodeToken } from '../../protocol/token.ts';
import { principalName } from '../principal.ts';
import type { StoredToken } from '../store.ts';
import { badInput, iso, type Operation, type OperationContext } from './operation.ts';

/** What a new token allows; every field has a default. */
export interface CreateTokenInput {
  /** How long it stays usable (default LIMITS.tokenDefaultTtlMs). */
  ttlMs?: number;
  /** The one device name it enrols, or null: the agent picks (--name or its host name). */
  name?: string | null;
  labels?: Record<string, string>;
  /** How many devices it may enrol (default 1). */
  uses?: number;
  /** Whether devices it enrols are approved at once. */
  approve?: boolean;
}

/** A new token (the only time its secret is shown) and what it allows. */
export interface CreatedToken {
  token: string; id: string; expiresAt: string; uses: number; name: string | null; labels: Record<string, string>;
  approve: boolean; relay: string;
  /** The endpoints the token carries, in the order the agent tries them. */
  endpoints: string[];
  fingerprint: string;
}

/** Every problem with a token request, in order (no side effects): the front end merges them with its own. */
export function createTokenProblems(ctx: OperationContext, input: CreateTokenInput): string[] {
  const ttl = input.ttlMs ?? LIMITS.tokenDefaultTtlMs;
  const uses = input.uses ?? 1;
  const name = input.name ?? null;
  const problems: string[] = [];
  if (!Number.isFinite(ttl) || ttl <= 0) problems.push('--ttl must be a positive duration like 15m, 1h or 7d');
  else if (ttl > LIMITS.tokenMaxTtlMs) problems.push(`--ttl is longer than the longest allowed (${LIMITS.tokenMaxTtlMs / 86_400_000}d)`);
  if (!Number.isInteger(uses) || uses < 1 || uses > LIMITS.tokenMaxUses) problems.push(`--uses '${uses}' must be a whole number from 1 to ${LIMITS.tokenMaxUses}`);
  if (name !== null) {
    const p = deviceNameProblem(name);
    if (p) problems.push(p);
    else if (ctx.store.getDevice(name)) problems.push(`a device named '${name}' is enrolled already: 'device rm ${name}' first, or pick another name`);
    if (uses !== 1) problems.push('--name fixes one device name, so it goes with a single use (drop --uses)');
  }
  problems.push(...parseLabels(Object.entries(input.labels ?? {}).map(([k, v]) => `${k}=${v}`)).problems);
  return problems;
}

/** Makes an enrollment token for 'ferry agent --token'. */
export const createToken: Operation<CreateTokenInput, CreatedToken> = {
  name: 'token.create',
  action: 'token.create',
  targetOf: (i) => i.name ?? null,
  run(ctx, principal, input) {
    badInput(createTokenProblems(ctx, input));
    const ttl = input.ttlMs ?? LIMITS.tokenDefaultTtlMs;
    const uses = input.uses ?? 1;
    const name = input.name ?? null;
    const labels = input.labels ?? {};
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = ctx.now + ttl;
    const approve = input.approve === true;
    // Only the secret's hash is kept: the store cannot hand out a working token. The secret
    // is 32 random bytes, so a plain SHA-256 needs no salt or stretching.
    ctx.store.transaction(() => {
      ctx.store.createToken({ id, createdBy: principalName(principal), createdAt: ctx.now, expiresAt, usesLeft: uses, name, labels, approve },
        createHash('sha256').update(secret).digest());
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'token.create', target: name, detail: { id, expiresAt, uses, approve, labels } });
    });
    const endpoints = [...(ctx.relay.agentEndpoints ?? [ctx.relay.publicAddress])];
    const token = encodeToken({ endpoints, fingerprint: ctx.relay.fingerprint, id, secret, tlsPin: ctx.relay.tlsPin ?? null });
    return { token, id, expiresAt: iso(expiresAt)!, uses, name, labels, approve, relay: ctx.relay.publicAddress, endpoints, fingerprint: ctx.relay.fingerprint };
  },
};

/** Whether a token can still enrol a device, and if not, why. */
export type TokenState = 'usable' | 'revoked' | 'expired' | 'used up';

/** A token as listed: never its secret. */
export interface TokenView {
  id: string; name: string | null; labels: Record<string, string>; usesLeft: number; expiresAt: string; createdBy: string;
  createdAt: string; approve: boolean; state: TokenState; revokedAt: string | null;
}

function tokenState(t: StoredToken, now: number): TokenState {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt <= now) return 'expired';
  return t.usesLeft <= 0 ? 'used up' : 'usable';
}

/** Tokens that can still enrol, or every one with `all`. */
export const listTokens: Operation<{ all?: boolean }, TokenView[]> = {
  name: 'token.list',
  action: 'token.list',
  run(ctx, _principal, input) {
    return ctx.store.listTokens().map((t) => ({
      id: t.id, name: t.name, labels: t.labels, usesLeft: t.usesLeft, expiresAt: iso(t.expiresAt)!, createdBy: t.createdBy,
      createdAt: iso(t.createdAt)!, approve: t.approve, state: tokenState(t, ctx.now), revokedAt: iso(t.revokedAt),
    })).filter((t) => input.all === true || t.state === 'usable');
  },
};

/** Revokes a token: enrolling with it is refused from now on. */
export const revokeToken: Operation<{ id: string }, { id: string; result: 'revoked' }> = {
  name: 'token.revoke',
  action: 'token.revoke',
  run(ctx, principal, { id }) {
    const token = ctx.store.listTokens().find((t) => t.id === id);
    if (!token) throw new FerryError('FERRY_NOT_FOUND', `no token with id '${id}'; 'token ls --all' lists them`);
    if (token.revokedAt !== null) throw new FerryError('FERRY_CONFLICT', `token ${id} was revoked already`);
    ctx.store.transaction(() => {
      ctx.store.revokeToken(id, ctx.now);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'token.revoke', target: token.name, detail: { id } });
    });
    return { id, result: 'revoked' };
  },
};
