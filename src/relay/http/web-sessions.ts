/**
 * Console sessions over the store, without HTTP: spend a sign-in link and open a session,
 * find the live session a cookie names, end one (logout, expiry). Every decision is taken
 * against the store as it is now, so a removed user or one without keys is signed out at
 * the very next request. web-auth.ts is the HTTP side.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import type { AuditRateLimit } from '../audit-rate.ts';
import type { RelayContext } from '../context.ts';
import { relaySsh } from '../relay-address.ts';
import { secretHash } from '../operations/index.ts';
import type { Principal } from '../principal.ts';
import type { LoginLinkRefusal, WebSessionRecord } from '../store.ts';

/** A web principal: who a console session acts as. */
export type WebPrincipal = Extract<Principal, { kind: 'web' }>;

/** What the relay needs to run console sessions. */
export interface WebSessionDeps {
  ctx: RelayContext;
  /** Bounds the web.login.refused rows, as the SSH front door bounds relay.login.refused. */
  refusals: AuditRateLimit;
  /** Told of every session that ends (logout, expiry), so that its live streams and terminals end too. */
  onEnd?: (session: WebSessionRecord, why: string) => void;
}

/** What a browser is told when a link does not sign it in: what happened, and what to do. */
const REFUSAL_TEXT: Record<LoginLinkRefusal, string> = {
  unknown: 'this sign-in link is not one the relay made (mistyped, cut short, or from another relay)',
  used: 'this sign-in link was used already: each works once',
  expired: `this sign-in link has expired: each works within ${LIMITS.loginLinkTtlMs / 60_000} minutes`,
};

/** The command line that prints a sign-in link on this relay, with the user's name when it is known: what refusals tell. */
export function loginCommand(publicAddress: string, user: string | null): string {
  return `${relaySsh(publicAddress, user ?? 'USER')} login`;
}

/** A new session and the cookie secret that names it (the only time the secret exists outside the browser). */
export interface SignedIn { secret: string; session: WebSessionRecord }

/**
 * Spends the sign-in link `token` and opens a session for its user. Throws
 * FERRY_AUTH_REFUSED (audited as web.login.refused, rate-limited) when the link is unknown,
 * used, expired, or its user can no longer sign in.
 */
export function signIn(deps: WebSessionDeps, token: string, remoteAddress: string): SignedIn {
  const { ctx } = deps;
  const now = ctx.clock.now();
  const refuse = (why: string, user: string | null, message: string): never => {
    if (deps.refusals.take()) ctx.store.audit({ at: now, actor: user ?? 'relay', action: 'web.login.refused', target: user, detail: { why, remote: remoteAddress } });
    throw new FerryError('FERRY_AUTH_REFUSED', `${message}: run '${loginCommand(ctx.publicAddress, user)}' for a new one`);
  };
  if (token.length === 0 || token.length > LIMITS.loginTokenMaxChars) refuse('unknown', null, REFUSAL_TEXT.unknown);
  const spent = ctx.store.redeemLoginLink(secretHash(token), now);
  if ('refused' in spent) return refuse(spent.refused, spent.user, REFUSAL_TEXT[spent.refused]);
  const user = ctx.store.getUser(spent.user);
  if (!user || user.keys.length === 0) return refuse('no key', spent.user, `user '${spent.user}' has no key any more, and a user without a key cannot sign in`);
  const secret = randomBytes(32).toString('base64url');
  const session: WebSessionRecord = {
    id: randomBytes(8).toString('hex'), user: user.name, csrf: randomBytes(32).toString('base64url'),
    createdAt: now, expiresAt: now + ctx.config.consoleSessionTtlMs, remoteAddress,
  };
  ctx.store.transaction(() => {
    ctx.store.addWebSession(secretHash(secret), session);
    ctx.store.audit({ at: now, actor: user.name, action: 'web.login', target: user.name, detail: { session: session.id, remote: remoteAddress, expiresAt: session.expiresAt } });
  });
  return { secret, session };
}

/**
 * The live session the cookie secret names, as the store has it now; null when there is
 * none, it has expired (it is ended here, with its row), or its user is gone or has no key.
 */
export function liveSession(deps: WebSessionDeps, secret: string): WebSessionRecord | null {
  const { ctx } = deps;
  const session = ctx.store.getWebSession(secretHash(secret));
  if (!session) return null;
  if (session.expiresAt <= ctx.clock.now()) {
    endSession(deps, session, 'expired');
    return null;
  }
  // The row goes with the user (ON DELETE CASCADE); keys are checked here, as every SSH login checks its key.
  const user = ctx.store.getUser(session.user);
  return user && user.keys.length > 0 ? session : null;
}

/** The principal a session acts as, from the address this request came from. */
export function principalOf(session: WebSessionRecord, remoteAddress: string): WebPrincipal {
  return { kind: 'web', user: session.user, sessionId: session.id, remoteAddress };
}

/** Whether `given` is the session's CSRF token, compared in constant time. */
export function csrfMatches(session: WebSessionRecord, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Ends a session (logout: `why` 'logout'; expiry: 'expired') and writes its web.logout row. */
export function endSession(deps: WebSessionDeps, session: WebSessionRecord, why: string): void {
  const { ctx } = deps;
  const now = ctx.clock.now();
  ctx.store.transaction(() => {
    if (!ctx.store.removeWebSession(session.id)) return;
    ctx.store.audit({ at: now, actor: session.user, action: 'web.logout', target: session.user, detail: { session: session.id, why } });
  });
  deps.onEnd?.(session, why);
}

/** Ends every session past its expiry (with their rows) and forgets old sign-in links; returns how many sessions. */
export function expireSessions(deps: WebSessionDeps): number {
  const { ctx } = deps;
  const now = ctx.clock.now();
  const expired = ctx.store.expireWebAuth(now, LIMITS.loginLinkKeepMs);
  for (const session of expired) {
    ctx.store.audit({ at: now, actor: session.user, action: 'web.logout', target: session.user, detail: { session: session.id, why: 'expired' } });
    deps.onEnd?.(session, 'expired');
  }
  return expired.length;
}
