/**
 * The console's sign-in on HTTP: the session cookie, the CSRF rule for every request that
 * changes something, the Origin check, and the routes POST/DELETE /api/v1/session and
 * GET /api/v1/me. Other areas (the API, the terminal's WebSocket) ask `webPrincipal`,
 * `requireWeb` and `originAllowed`; the rules themselves are in web-sessions.ts.
 */
import fastifyCookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../../common/errors.ts';
import type { TimerHandle } from '../../common/clock.ts';
import { ACTIONS, type Action } from '../../protocol/access-rules.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { mayAct } from '../access-policy.ts';
import { AuditRateLimit } from '../audit-rate.ts';
import type { RelayContext } from '../context.ts';
import { perform, subjectOf, whoami } from '../operations/index.ts';
import type { WebSessionRecord } from '../store.ts';
import { operationContext } from './op-context.ts';
import { csrfMatches, endSession, expireSessions, liveSession, loginCommand, principalOf, signIn, type WebPrincipal, type WebSessionDeps } from './web-sessions.ts';

/** The session cookie's name. */
export const SESSION_COOKIE = 'ferry_session';
/** The header every state-changing request carries, with the session's CSRF token (from /me). */
export const CSRF_HEADER = 'x-ferry-csrf';

/** Where the console is: its URL (filled in once the listener has bound its port) and whether the listener speaks TLS. */
export interface ConsoleUrls { url: string; tls: boolean }

/** GET /api/v1/me and the body of a sign-in: who the browser is signed in as, and what it may do. */
export interface MeView {
  user: string;
  roles: string[];
  /** The relay actions the user's roles grant now (the pages show what these allow). */
  actions: Action[];
  /** What state-changing requests send in the x-ferry-csrf header. */
  csrf: string;
  expiresAt: string;
  relay: { publicUrl: string; sshAddress: string; fingerprint: string };
}

interface WebAuthState { deps: WebSessionDeps; urls: ConsoleUrls; origin?: string | null }

declare module 'fastify' {
  interface FastifyInstance {
    /** The console's sign-in state, for webPrincipal and originAllowed (set by registerWebAuth). */
    ferryWebAuth: WebAuthState;
  }
}

/** What one request's cookie resolved to, so that several checks in one request read the store once. */
const resolved = new WeakMap<FastifyRequest, { session: WebSessionRecord; principal: WebPrincipal } | null>();

function stateOf(req: FastifyRequest): WebAuthState {
  const state = req.server.ferryWebAuth;
  if (!state) throw new FerryError('FERRY_INTERNAL', 'the console sign-in is not registered on this HTTP app');
  return state;
}

function sessionOf(req: FastifyRequest): { session: WebSessionRecord; principal: WebPrincipal } | null {
  if (resolved.has(req)) return resolved.get(req)!;
  const secret = req.cookies[SESSION_COOKIE];
  const session = secret === undefined ? null : liveSession(stateOf(req).deps, secret);
  const found = session === null ? null : { session, principal: principalOf(session, req.ip) };
  resolved.set(req, found);
  return found;
}

/** The web principal of the request's session cookie, or null when it names no live session. */
export function webPrincipal(req: FastifyRequest): WebPrincipal | null {
  return sessionOf(req)?.principal ?? null;
}

/** The request's web principal; throws FERRY_AUTH_REFUSED (401) when it has no live session. */
export function requireWeb(req: FastifyRequest): WebPrincipal {
  const p = webPrincipal(req);
  if (p === null) throw new FerryError('FERRY_AUTH_REFUSED', `not signed in, or the session has ended: run '${loginCommand(stateOf(req).deps.ctx.publicAddress, null)}' and open the link it prints`);
  return p;
}

/**
 * Whether the request's Origin header names the console: the origin of its URL, or the
 * origin the request itself was sent to (its Host, by the listener's scheme). A page on
 * another site can name neither (decisions: "the console's origin").
 */
export function originAllowed(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const state = stateOf(req);
  const { urls } = state;
  // The listener's own origin is derived once, when the first request asks (its URL is known only after listen).
  state.origin ??= originOf(urls.url);
  const own = [state.origin, req.headers.host === undefined ? null : originOf(`${urls.tls ? 'https' : 'http'}://${req.headers.host}`)];
  return own.some((o) => o !== null && o === originOf(origin));
}

function originOf(url: string): string | null {
  try {
    const o = new URL(url).origin;
    return o === 'null' ? null : o;
  } catch {
    return null;
  }
}

/** The /me view of a session. */
function meView(ctx: RelayContext, urls: ConsoleUrls, session: WebSessionRecord, principal: WebPrincipal): MeView {
  const opCtx = operationContext(ctx);
  const me = perform(opCtx, principal, whoami, {});
  const subject = subjectOf(opCtx, principal);
  return {
    user: me.name, roles: me.roles, actions: ACTIONS.filter((a) => mayAct(subject, a).allow), csrf: session.csrf,
    expiresAt: new Date(session.expiresAt).toISOString(),
    relay: { publicUrl: urls.url, sshAddress: ctx.publicAddress, fingerprint: ctx.fingerprint },
  };
}

/** A state-changing request that is not the sign-in itself needs the session's CSRF token. */
function isSignIn(req: FastifyRequest): boolean {
  return req.method === 'POST' && req.routeOptions.url === '/api/v1/session';
}

/**
 * Registers the cookie plugin, the CSRF and Origin rule for every state-changing request,
 * the sign-in routes, and the sweep that ends expired sessions.
 */
export function registerWebAuth(app: FastifyInstance, ctx: RelayContext, urls: ConsoleUrls): void {
  const deps: WebSessionDeps = {
    ctx,
    refusals: new AuditRateLimit(ctx.clock, ctx.config.webLoginRefusalAudit, (left) => ctx.store.audit({
      at: ctx.clock.now(), actor: 'relay', action: 'web.login.refused', target: null,
      detail: { suppressed: left.suppressed, from: left.from, until: left.until, why: `${left.suppressed} more refused sign-ins in this window were not written one by one (rate limit)` },
    })),
    // A session that ends takes its live event streams and terminals with it.
    onEnd: (session, why) => ctx.sessions.endConnections((p) => (p.kind === 'web' && p.sessionId === session.id ? `console session ${why}` : null)),
  };
  app.decorate('ferryWebAuth', { deps, urls });
  void app.register(fastifyCookie);

  // preHandler rather than onRequest: it runs after the cookie plugin has parsed the cookies.
  app.addHook('preHandler', async (req) => {
    // Nothing is at an unknown path to protect: it gets its plain 404.
    if (req.method === 'GET' || req.method === 'HEAD' || req.is404) return;
    // Origin first: a page on another site is refused whatever it sends. The sign-in has no
    // session yet, but its Origin check stops another site from signing a browser in as
    // someone else (login CSRF).
    if (!originAllowed(req)) throw new FerryError('FERRY_PERMISSION_DENIED', `refused: a request that changes something must come from the console's own page (Origin ${originOf(urls.url) ?? urls.url}), not ${req.headers.origin ?? 'without an Origin header'}`);
    if (isSignIn(req)) return;
    const found = sessionOf(req);
    if (found === null) requireWeb(req);
    const given = req.headers[CSRF_HEADER];
    if (!csrfMatches(found!.session, typeof given === 'string' ? given : undefined)) {
      throw new FerryError('FERRY_PERMISSION_DENIED', `refused: a request that changes something must carry the ${CSRF_HEADER} header with the session's csrf token (GET /api/v1/me returns it)`);
    }
  });

  const cookieOptions = () => ({ httpOnly: true, secure: urls.tls || urls.url.startsWith('https:'), sameSite: 'strict' as const, path: '/' });

  app.post('/api/v1/session', async (req, reply: FastifyReply) => {
    const body = req.body as { token?: unknown } | null;
    if (typeof body?.token !== 'string') throw new FerryError('FERRY_USAGE', 'send {"token": "..."}: the part of the sign-in link after #');
    const { secret, session } = signIn(deps, body.token, req.ip);
    const principal = principalOf(session, req.ip);
    reply.setCookie(SESSION_COOKIE, secret, { ...cookieOptions(), maxAge: Math.floor(ctx.config.consoleSessionTtlMs / 1000) });
    return meView(ctx, urls, session, principal);
  });

  app.delete('/api/v1/session', async (req, reply) => {
    requireWeb(req);
    endSession(deps, sessionOf(req)!.session, 'logout');
    reply.clearCookie(SESSION_COOKIE, cookieOptions());
    return reply.code(204).send();
  });

  app.get('/api/v1/me', async (req) => {
    const principal = requireWeb(req);
    return meView(ctx, urls, sessionOf(req)!.session, principal);
  });

  let sweep: TimerHandle | null = null;
  const arm = () => {
    sweep = ctx.clock.setTimeout(() => {
      try {
        expireSessions(deps);
      } catch (err) {
        ctx.log.error({ err: (err as Error).message }, 'ending expired console sessions failed');
      }
      arm();
    }, LIMITS.consoleSessionSweepMs);
  };
  app.addHook('onReady', async () => arm());
  app.addHook('onClose', async () => {
    sweep?.cancel();
    deps.refusals.flush();
  });
}
