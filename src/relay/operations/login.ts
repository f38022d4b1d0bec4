/** Console sign-in links: `login` makes a one-time URL that signs a browser in as a relay user. */
import { createHash, randomBytes } from 'node:crypto';
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { principalName } from '../principal.ts';
import { iso, type Operation } from './operation.ts';

/** Whom the link signs in: a relay user signs in only themselves; the local CLI names the user. */
export interface LoginLinkInput { user?: string }

/** A new sign-in link (the only time its secret is shown) and when it stops working. */
export interface LoginLink { url: string; user: string; expiresAt: string; ttlSeconds: number }

/**
 * The sha256 of a sign-in or session secret, as the store keeps it. The secrets are 32
 * random bytes, so a plain hash needs no salt or stretching.
 */
export function secretHash(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * Makes a one-time sign-in link. The secret goes in the URL's fragment, which a browser never
 * sends: it reaches no server log, proxy or Referer, and a mail scanner that fetches the
 * link does not spend it (the page posts it).
 */
export const createLoginLink: Operation<LoginLinkInput, LoginLink> = {
  name: 'web.link',
  action: null,
  targetOf: (i) => i.user ?? null,
  run(ctx, principal, input) {
    const consoleUrl = ctx.relay.consoleUrl ?? null;
    if (consoleUrl === null) {
      throw new FerryError('FERRY_CONFLICT', 'this relay has no web console (it runs with --http-listen off, or has not been started since ferry had one): start it with --http-listen HOST:PORT');
    }
    let user: string;
    if (principal.kind === 'local') {
      if (input.user === undefined) throw new FerryError('FERRY_USAGE', 'give the relay user to sign in: login USER');
      user = input.user;
    } else {
      // Signing in someone else would be acting as them: nobody but the relay host's owner may.
      if (input.user !== undefined && input.user !== principal.user) throw new FerryError('FERRY_PERMISSION_DENIED', `a sign-in link is for yourself only: run 'login' without a name (you are '${principal.user}')`);
      user = principal.user;
    }
    const record = ctx.store.getUser(user);
    if (!record) throw new FerryError('FERRY_NOT_FOUND', `there is no user '${user}'; 'users' lists them`);
    if (record.keys.length === 0) throw new FerryError('FERRY_CONFLICT', `user '${user}' has no key, and a user without a key cannot sign in: 'user key add ${user} KEY' first`);
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = ctx.now + LIMITS.loginLinkTtlMs;
    ctx.store.transaction(() => {
      ctx.store.addLoginLink(secretHash(secret), { user, createdAt: ctx.now, expiresAt });
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'web.link', target: user, detail: { expiresAt } });
    });
    return { url: `${consoleUrl}/login#${secret}`, user, expiresAt: iso(expiresAt)!, ttlSeconds: LIMITS.loginLinkTtlMs / 1000 };
  },
};
