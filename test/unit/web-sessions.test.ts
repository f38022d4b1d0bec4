/** Console sessions over a real store, without HTTP (src/relay/http/web-sessions.ts): sign-in, lookup, CSRF, end, expiry, refusals bounded. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/common/errors.ts';
import { AuditRateLimit } from '../../src/relay/audit-rate.ts';
import type { RelayContext } from '../../src/relay/context.ts';
import { csrfMatches, endSession, expireSessions, liveSession, signIn, type WebSessionDeps } from '../../src/relay/http/web-sessions.ts';
import { secretHash } from '../../src/relay/operations/index.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store, WebSessionRecord } from '../../src/relay/store.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-web-sessions-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let store: Store;
let clock: FakeClock;
let deps: WebSessionDeps;
let ended: [string, string][];

beforeEach(() => {
  store = openSqliteStore(join(dir, `s-${++n}.db`));
  store.addUser('alice', ['admin'], [{ fingerprint: 'SHA256:a', line: 'ssh-ed25519 AAAAa' }], 0);
  clock = new FakeClock();
  ended = [];
  const ctx = { store, clock, config: { consoleSessionTtlMs: 3_600_000 } } as unknown as RelayContext;
  deps = {
    ctx,
    refusals: new AuditRateLimit(clock, { perWindow: 3, windowMs: 60_000 }, (left) => store.audit({ at: clock.now(), actor: 'relay', action: 'web.login.refused', target: null, detail: { suppressed: left.suppressed } })),
    onEnd: (s: WebSessionRecord, why: string) => ended.push([s.id, why]),
  };
});
afterEach(() => store.close());

const link = (secret: string, ttl = 120_000) => store.addLoginLink(secretHash(secret), { user: 'alice', createdAt: clock.now(), expiresAt: clock.now() + ttl });
const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (err: unknown) => isFerryError(err, 'FERRY_AUTH_REFUSED') && message.test(err.message));

describe('web sessions', () => {
  test('a link opens one session; the cookie secret finds it, its csrf matches in constant time, logout ends it', () => {
    link('s1');
    const { secret, session } = signIn(deps, 's1', '192.0.2.1');
    assert.equal(session.user, 'alice');
    assert.equal(session.expiresAt, clock.now() + 3_600_000);
    assert.equal(liveSession(deps, secret)?.id, session.id);
    assert.equal(liveSession(deps, 'not-it'), null);
    assert.ok(csrfMatches(session, session.csrf));
    assert.ok(!csrfMatches(session, session.csrf.slice(1)));
    assert.ok(!csrfMatches(session, undefined));
    refused(() => signIn(deps, 's1', '192.0.2.1'), /used already/);
    endSession(deps, session, 'logout');
    assert.equal(liveSession(deps, secret), null);
    assert.deepEqual(ended, [[session.id, 'logout']]);
    assert.deepEqual(store.listAudit({ action: 'web.*', limit: 10 }).map((r) => [r.action, r.detail.why ?? null]), [['web.login', null], ['web.login.refused', 'used'], ['web.logout', 'logout']]);
  });

  test('expiry: at the request past it (with its row), and by the sweep', () => {
    link('a');
    link('b');
    const one = signIn(deps, 'a', '');
    const two = signIn(deps, 'b', '');
    clock.advance(3_600_000);
    assert.equal(liveSession(deps, one.secret), null);
    assert.equal(expireSessions(deps), 1, 'the other is swept');
    assert.deepEqual(ended.map(([, why]) => why), ['expired', 'expired']);
    assert.deepEqual(new Set(ended.map(([id]) => id)), new Set([one.session.id, two.session.id]));
    assert.equal(store.listAudit({ action: 'web.logout', limit: 10 }).length, 2);
  });

  test('a user without keys is signed out, and cannot sign in', () => {
    link('a');
    link('b');
    const s = signIn(deps, 'a', '');
    store.removeUserKey('alice', 'SHA256:a');
    assert.equal(liveSession(deps, s.secret), null);
    refused(() => signIn(deps, 'b', ''), /has no key/);
  });

  test('refused sign-ins are audited at most so many per window, then summed up', () => {
    for (let i = 0; i < 5; i++) refused(() => signIn(deps, `nope-${i}`, '192.0.2.9'), /not one the relay made/);
    refused(() => signIn(deps, 'x'.repeat(200), ''), /not one the relay made/);
    assert.equal(store.listAudit({ action: 'web.login.refused', limit: 10 }).length, 3);
    clock.advance(60_000);
    const rows = store.listAudit({ action: 'web.login.refused', limit: 10 });
    assert.equal(rows.length, 4);
    assert.equal(rows.at(-1)!.detail.suppressed, 3);
  });
});
