/**
 * The console's sign-in (issue #11): `ssh relay login` prints a one-time URL; the page posts
 * its fragment and gets a session cookie; the link works once and for two minutes; the
 * cookie is HttpOnly, Secure, SameSite=Strict; state-changing requests need the CSRF header
 * and the console's Origin; logout, expiry, user rm and the loss of every key end a session;
 * a relay restart does not. Real HTTPS requests against a real relay, real OpenSSH for the
 * command line, the real `ferry login` for the local CLI.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { systemClock, type Clock } from '../../src/common/clock.ts';
import { addUser, removeUser, removeUserKey, addUserKey, createLoginLink } from '../../src/relay/operations/index.ts';
import { startRelay } from '../../src/relay/relay.ts';
import { fileCleanup, makeKey, run } from '../helpers/env.ts';
import { FERRY, LOCAL_ADMIN, operate, startFixture, testLogger, testRelayConfig, type Fixture } from '../helpers/fixture.ts';
import { relayCommand } from '../helpers/ssh-client.ts';
import { WebClient } from '../helpers/web-client.ts';

/** The real clock, moved forward by `offset` when a test needs time to pass. */
class OffsetClock implements Clock {
  offset = 0;
  now(): number { return Date.now() + this.offset; }
  setTimeout(fn: () => void, ms: number) { return systemClock.setTimeout(fn, ms); }
}

const HTTP = { httpListen: { host: '127.0.0.1', port: 0 } };

/** A one-time URL for `user`, made in process as the relay host's admin would (`ferry login USER`). */
function linkFor(f: Fixture, user: string): string {
  return f.operate(createLoginLink, { user }).url;
}

function auditRows(f: Fixture, action: string) {
  return f.relay.store.listAudit({ action, limit: 100 });
}

describe('console sign-in', { concurrency: false }, () => {
  const clock = new OffsetClock();
  const suite = fileCleanup(after);
  let f: Fixture;

  before(async () => {
    f = await startFixture(suite, HTTP, { clock });
    f.operate(addUser, { name: 'bob', keys: [makeKey(f.dir, 'bob_key').pub], roles: ['operator'] });
  });

  test('ssh relay login prints a one-time URL with the token in the fragment, and --json', async () => {
    const r = await relayCommand(f.admin, ['login']);
    assert.equal(r.code, 0, r.stderr);
    const url = r.stdout.trim();
    assert.match(url, new RegExp(`^${f.relay.http!.url.replace(/[.]/g, '\\.')}/login#[A-Za-z0-9_-]{43}$`));
    assert.match(r.stderr, /works once, within 2 minutes/);
    const j = await relayCommand(f.admin, ['login', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const parsed = JSON.parse(j.stdout) as { url: string; user: string; ttlSeconds: number };
    assert.equal(parsed.user, 'admin');
    assert.equal(parsed.ttlSeconds, 120);
    assert.notEqual(new URL(parsed.url).hash, new URL(url).hash, 'every link is new');
    // Over SSH a user signs in only themselves.
    const other = await relayCommand(f.admin, ['login', 'bob']);
    assert.equal(other.code, 2, 'login takes no user name over SSH');
  });

  test('a link signs in once: the cookie is HttpOnly, Secure, SameSite=Strict, Path=/, for the session TTL', async () => {
    const r = await relayCommand(f.admin, ['login']);
    const url = r.stdout.trim();
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    const first = await web.signIn(url);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.user, 'admin');
    assert.deepEqual(first.json.roles, ['admin']);
    assert.ok((first.json.actions as string[]).includes('role.edit'));
    assert.equal(typeof first.json.csrf, 'string');
    assert.equal(first.json.relay.publicUrl, f.relay.http!.url);
    assert.equal(first.json.relay.fingerprint, f.relay.fingerprint);
    assert.equal(first.json.relay.sshAddress, f.relay.publicAddress);
    const cookie = web.setCookie!;
    assert.match(cookie, /^ferry_session=[A-Za-z0-9_-]{43};/);
    for (const flag of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']) assert.ok(cookie.split('; ').includes(flag), `${flag} in ${cookie}`);
    const me = await web.request('GET', '/api/v1/me');
    assert.equal(me.status, 200);
    assert.equal(me.json.user, 'admin');
    assert.equal(me.json.csrf, first.json.csrf);

    // The same link again, from another browser: refused, and audited.
    const thief = WebClient.of(f.relay, join(f.dir, 'relay'));
    const reused = await thief.signIn(url);
    assert.equal(reused.status, 401);
    assert.equal(reused.json.error.code, 'FERRY_AUTH_REFUSED');
    assert.match(reused.json.error.message, /used already/);
    assert.ok(reused.json.error.message.endsWith(`run 'ssh -p ${f.relay.sshAddress.port} admin@127.0.0.1 login' for a new one`), reused.json.error.message);
    assert.equal(thief.cookie, null);
    const login = auditRows(f, 'web.login').at(-1)!;
    assert.equal(login.actor, 'admin');
    assert.equal(typeof login.detail.session, 'string');
    const refused = auditRows(f, 'web.login.refused').at(-1)!;
    assert.equal(refused.detail.why, 'used');
    assert.equal(refused.target, 'admin');

    const unknown = await thief.signIn(`${f.relay.http!.url}/login#${'A'.repeat(43)}`);
    assert.equal(unknown.status, 401);
    assert.match(unknown.json.error.message, /not one the relay made/);
    assert.equal(auditRows(f, 'web.login.refused').at(-1)!.detail.why, 'unknown');
  });

  test('no cookie or a made-up one: 401 FERRY_AUTH_REFUSED', async () => {
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    const none = await web.request('GET', '/api/v1/me');
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'FERRY_AUTH_REFUSED');
    web.cookie = 'A'.repeat(43);
    assert.equal((await web.request('GET', '/api/v1/me')).status, 401);
  });

  test('CSRF: a state-changing request without the header, or from another origin, is refused 403', async () => {
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    assert.equal((await web.signIn(linkFor(f, 'bob'))).status, 200);
    const noHeader = await web.request('DELETE', '/api/v1/session', { csrf: null });
    assert.equal(noHeader.status, 403);
    assert.equal(noHeader.json.error.code, 'FERRY_PERMISSION_DENIED');
    assert.match(noHeader.json.error.message, /x-ferry-csrf/);
    const wrong = await web.request('DELETE', '/api/v1/session', { csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    const foreign = await web.request('DELETE', '/api/v1/session', { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.match(foreign.json.error.message, /evil\.example/);
    const noOrigin = await web.request('DELETE', '/api/v1/session', { origin: null });
    assert.equal(noOrigin.status, 403);
    // None of them ended the session.
    assert.equal((await web.request('GET', '/api/v1/me')).status, 200);

    // Signing a browser in from another site (login CSRF) is refused before the link is spent.
    const url = linkFor(f, 'bob');
    const other = WebClient.of(f.relay, join(f.dir, 'relay'));
    const crossSite = await other.signIn(url, { origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal(other.cookie, null);
    assert.equal((await other.signIn(url)).status, 200, 'the link still works from the console itself');
  });

  test('logout ends the session at once and clears the cookie', async () => {
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    await web.signIn(linkFor(f, 'bob'));
    const stolen = web.cookie;
    const out = await web.request('DELETE', '/api/v1/session');
    assert.equal(out.status, 204);
    assert.match(web.setCookie!, /^ferry_session=;/);
    web.cookie = stolen;
    assert.equal((await web.request('GET', '/api/v1/me')).status, 401, 'the old cookie is worth nothing');
    const row = auditRows(f, 'web.logout').at(-1)!;
    assert.equal(row.actor, 'bob');
    assert.equal(row.detail.why, 'logout');
  });

  test('user rm and the loss of every key end the user\'s sessions at the next request', async () => {
    const carol = makeKey(f.dir, 'carol_key');
    f.operate(addUser, { name: 'carol', keys: [carol.pub], roles: ['operator'] });
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    await web.signIn(linkFor(f, 'carol'));
    assert.equal((await web.request('GET', '/api/v1/me')).status, 200);
    const fp = f.relay.store.getUser('carol')!.keys[0]!.fingerprint;
    f.operate(removeUserKey, { name: 'carol', fingerprint: fp });
    assert.equal((await web.request('GET', '/api/v1/me')).status, 401, 'no key left: signed out');
    // A link for a user without keys is not even made.
    assert.throws(() => linkFor(f, 'carol'), /no key/);
    f.operate(addUserKey, { name: 'carol', key: carol.pub });
    await web.signIn(linkFor(f, 'carol'));
    assert.equal((await web.request('GET', '/api/v1/me')).status, 200);
    f.operate(removeUser, { name: 'carol' });
    assert.equal((await web.request('GET', '/api/v1/me')).status, 401, 'removed: signed out');
  });

  test('a link expires after 2 minutes; a session after its TTL, with a web.logout row', async (t) => {
    // Links made in process are stamped with the real time: the relay's clock moves past them.
    t.after(() => { clock.offset = 0; });
    const url = linkFor(f, 'bob');
    clock.offset += 2 * 60 * 1000 + 1000;
    const late = WebClient.of(f.relay, join(f.dir, 'relay'));
    const r = await late.signIn(url);
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /expired/);
    assert.equal(auditRows(f, 'web.login.refused').at(-1)!.detail.why, 'expired');

    clock.offset = 0;
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    assert.equal((await web.signIn(linkFor(f, 'bob'))).status, 200);
    const session = auditRows(f, 'web.login').at(-1)!.detail.session;
    clock.offset += 12 * 60 * 60 * 1000 - 60_000;
    assert.equal((await web.request('GET', '/api/v1/me')).status, 200, 'still inside the TTL');
    clock.offset += 61_000;
    assert.equal((await web.request('GET', '/api/v1/me')).status, 401, 'past the TTL');
    const row = auditRows(f, 'web.logout').at(-1)!;
    assert.equal(row.detail.session, session);
    assert.equal(row.detail.why, 'expired');
  });

  test('ferry login USER --data-dir, on the relay host, prints a link for that user', async () => {
    const r = await run(process.execPath, [FERRY, 'login', 'bob', '--data-dir', join(f.dir, 'relay')]);
    assert.equal(r.code, 0, r.stderr);
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    const signed = await web.signIn(r.stdout.trim());
    assert.equal(signed.status, 200, signed.text);
    assert.equal(signed.json.user, 'bob');
    const noUser = await run(process.execPath, [FERRY, 'login', '--data-dir', join(f.dir, 'relay')]);
    assert.equal(noUser.code, 2);
  });

});

test('a relay restart keeps console sessions (they are stored)', async (t) => {
  const f = await startFixture(t, HTTP);
  const web = WebClient.of(f.relay, join(f.dir, 'relay'));
  assert.equal((await web.signIn(operate(f.relay, createLoginLink, { user: 'admin' }, LOCAL_ADMIN).url)).status, 200);
  await f.relay.stop();
  const again = await startRelay(testRelayConfig(join(f.dir, 'relay'), [], HTTP), { log: testLogger('relay') });
  t.after(() => again.stop());
  const next = WebClient.of(again, join(f.dir, 'relay'));
  next.cookie = web.cookie;
  const me = await next.request('GET', '/api/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.user, 'admin');
});
