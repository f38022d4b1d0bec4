// The browser terminal's WebSocket (src/relay/http/terminal-routes.ts) end to end, without a
// browser: the real relay with its HTTPS listener (self-signed TLS) and agents with built-in
// servers in process, a real sign-in through a one-time login URL, and a real `ws` client
// with the session cookie and the console's Origin. A new terminal echoes; a resize reaches
// `stty size`; a dropped socket resumes with every byte; a foreign Origin, no cookie, or
// another user's session id is refused before the upgrade; an offline device gets an error
// frame; a peer that stops answering pings is detached; signing out ends the terminal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { eventually, fileCleanup, makeKey } from '../helpers/env.ts';
import { LOGIN, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import { sshPrincipal } from '../helpers/fixture.ts';
import { connectTerminal, httpsRequest, signIn, TerminalClient, type Refusal } from '../helpers/console-client.ts';

/** Short, so that a peer that stops answering is noticed within a second. */
const PING_MS = 300;

const suite = fileCleanup(after);
let e: EmbeddedFixture;
let base: string;
const cookies: Record<string, string> = {};

async function cookieOf(user: string): Promise<string> {
  const r = e.f.command(['login'], sshPrincipal(user));
  assert.equal(r.code, 0, r.stderr);
  cookies[user] ??= await signIn(base, r.stdout);
  return cookies[user]!;
}

const newQuery = (device: string, cols = 80, rows = 24) => `device=${device}&login=${encodeURIComponent(LOGIN)}&cols=${cols}&rows=${rows}`;

async function open(user: string, query: string, opts: { nextSeq?: number } = {}): Promise<TerminalClient> {
  const t = await connectTerminal(base, query, { cookie: await cookieOf(user), ...opts });
  assert.ok(t instanceof TerminalClient, `the relay refused the terminal: ${JSON.stringify(t)}`);
  await t.until(() => t.sessionId, 'hello');
  return t;
}

function refused(r: TerminalClient | Refusal): Refusal {
  assert.ok(!(r instanceof TerminalClient), 'the request was upgraded; it should have been refused before');
  return r;
}

before(async () => {
  e = await startEmbedded(suite, { cam: null }, { httpListen: { host: '127.0.0.1', port: 0 }, consolePingIntervalMs: PING_MS });
  base = e.f.relay.http!.url;
  const dir = join(e.f.dir, 'ws-keys');
  mkdirSync(dir);
  for (const cmd of [
    ['role', 'add', 'console-login', '--devices', '*', '--logins', LOGIN],
    ['user', 'add', 'bob', '--key', makeKey(dir, 'bob').pub, '--role', 'console-login'],
  ]) {
    const r = e.f.command(cmd);
    assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
  }
  e.f.relay.reconcile();
});

test('a new terminal over TLS: hello, then the shell echoes a command; /metrics counts it', async () => {
  const t = await open('admin', newQuery('cam'));
  assert.ok(/^[A-Za-z0-9_-]{24}$/.test(t.sessionId!), `a 144-bit resume id, not ${t.sessionId}`);
  await t.shellReady();
  t.type('echo h""i\r');
  await t.untilText(/^hi\r?$/m, 'the echo');
  const metrics = await httpsRequest(base, '/metrics');
  assert.match(metrics.body, /^ferry_console_sessions_live 1$/m);
  assert.match(metrics.body, /^ferry_console_sessions_detached 0$/m);
  t.send({ type: 'close' });
  await t.until(() => t.closed, 'the close');
  await eventually(() => e.f.relay.consoles.stats().live === 0, 5_000, 'the terminal gone');
});

test('a resize reaches the shell: stty size follows it', async () => {
  const t = await open('admin', newQuery('cam', 40, 10));
  await t.shellReady();
  t.type('stty size\r');
  await t.untilText(/^10 40\r?$/m, 'the first size');
  t.send({ type: 'resize', cols: 132, rows: 43 });
  t.type('stty size\r');
  await t.untilText(/^43 132\r?$/m, 'the size after the resize');
  t.send({ type: 'close' });
  await t.until(() => t.closed, 'the close');
});

test('a dropped socket resumes with ?session=ID and gets every byte it missed, in order', async () => {
  const first = await open('admin', newQuery('cam'));
  await first.shellReady();
  first.type('seq 1 30000; echo do""ne\r');
  await first.untilText(/^500\r?$/m, 'the first numbers');
  first.drop();
  await eventually(() => e.f.relay.consoles.stats().detached === 1, 5_000, 'the terminal detached');
  const second = await open('admin', `session=${first.sessionId}`, { nextSeq: first.next });
  assert.equal(second.sessionId, first.sessionId);
  second.ack();
  await second.untilText(/^done\r?$/m, 'the rest of the output');
  const all = first.text + second.text;
  const numbers = [...all.slice(all.indexOf('seq 1 30000')).matchAll(/^(\d+)\r?$/gm)].map((m) => Number(m[1]));
  assert.equal(numbers.length, 30000, 'every line once');
  assert.ok(numbers.every((n, i) => n === i + 1), 'in order');
  second.send({ type: 'close' });
  await second.until(() => second.closed, 'the close');
});

test('a foreign Origin, no Origin, and no cookie are refused before the upgrade; nothing opens', async () => {
  const before = e.f.relay.consoles.stats().started;
  const cookie = await cookieOf('admin');
  const foreign = refused(await connectTerminal(base, newQuery('cam'), { cookie, origin: 'https://evil.example' }));
  assert.equal(foreign.status, 403);
  assert.equal((JSON.parse(foreign.body) as { error: { code: string } }).error.code, 'FERRY_PERMISSION_DENIED');
  const none = refused(await connectTerminal(base, newQuery('cam'), { cookie, origin: null }));
  assert.equal(none.status, 403);
  const noCookie = refused(await connectTerminal(base, newQuery('cam')));
  assert.equal(noCookie.status, 401);
  assert.equal((JSON.parse(noCookie.body) as { error: { code: string } }).error.code, 'FERRY_AUTH_REFUSED');
  const forged = refused(await connectTerminal(base, newQuery('cam'), { cookie: 'ferry_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
  assert.equal(forged.status, 401);
  const badSize = refused(await connectTerminal(base, newQuery('cam', 0, 24), { cookie }));
  assert.equal(badSize.status, 400);
  assert.equal(e.f.relay.consoles.stats().started, before, 'no console session was opened for a refused request');
});

/** Sends an upgrade request on a raw TLS socket; resolves with what the relay answered once it has closed the socket. */
function rawUpgrade(path: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nOrigin: ${url.origin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    });
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`the relay left the socket of an upgrade to ${path} open; it answered: ${JSON.stringify(text)}`)); }, 5_000);
    socket.on('data', (d: Buffer) => { text += d.toString(); });
    socket.on('error', () => undefined);
    socket.on('close', () => { clearTimeout(timer); resolve(text); });
  });
}

test('an upgrade request anywhere but the terminal, or refused there, is answered and its socket closed', async () => {
  // Such a socket is outside Node's HTTP timeouts: left open, anyone could fill the listener's connection limit.
  for (const path of ['/healthz', '/', '/no/such/path', '/api/v1/me']) {
    assert.match(await rawUpgrade(path), /^HTTP\/1\.1 404 /, path);
  }
  assert.match(await rawUpgrade(`/api/v1/terminal?${newQuery('cam')}`), /^HTTP\/1\.1 401 /);
});

test("another user's session id is refused before the upgrade, as an unknown one is", async () => {
  const mine = await open('admin', newQuery('cam'));
  const theirs = refused(await connectTerminal(base, `session=${mine.sessionId}`, { cookie: await cookieOf('bob') }));
  assert.equal(theirs.status, 404);
  const unknown = refused(await connectTerminal(base, 'session=nonesuch', { cookie: await cookieOf('bob') }));
  assert.equal(unknown.status, 404);
  assert.equal(JSON.parse(theirs.body).error.message.replace(mine.sessionId!, 'ID'), JSON.parse(unknown.body).error.message.replace('nonesuch', 'ID'), 'the same answer: nothing says the id exists');
  assert.equal(mine.closed, false, 'the owner keeps the terminal');
  mine.send({ type: 'close' });
  await mine.until(() => mine.closed, 'the close');
});

test('an offline device gets an error frame saying so, then a close', async () => {
  const agent = await e.f.device('away', { config: { sshTarget: 'embedded' } });
  await agent.stop();
  await eventually(() => e.f.relay.registry.get('away') === undefined, 5_000, 'the device offline');
  const t = await connectTerminal(base, newQuery('away'), { cookie: await cookieOf('admin') });
  assert.ok(t instanceof TerminalClient, 'upgraded: the policy and the device are checked after the upgrade');
  await t.until(() => t.closed, 'the close');
  assert.equal(t.sessionId, null, 'no hello: no session');
  const last = t.frames.at(-1);
  assert.ok(last?.type === 'error' && last.code === 'FERRY_CONNECT_FAILED' && /away/.test(last.message) && /offline/.test(last.message), JSON.stringify(last));
});

test('a peer that stops answering pings is closed by the relay and its terminal detached, kept for a resume', async () => {
  const t = await open('admin', newQuery('cam'));
  await t.shellReady();
  // The peer vanishes without a FIN (a laptop asleep): its socket stops reading, so pings go unanswered.
  (t.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  await eventually(() => e.f.relay.consoles.stats().detached === 1, 10 * PING_MS + 5_000, 'the relay detaching it');
  const again = await open('admin', `session=${t.sessionId}`, { nextSeq: t.next });
  again.ack();
  again.type('echo bac""k\r');
  await again.untilText(/^back\r?$/m, 'the resumed shell');
  again.send({ type: 'close' });
  await again.until(() => again.closed, 'the close');
  t.drop();
});

test('signing out ends a live terminal: an error frame with the reason, then a close', async () => {
  const r = e.f.command(['login'], sshPrincipal('admin'));
  const cookie = await signIn(base, r.stdout);
  const t = await connectTerminal(base, newQuery('cam'), { cookie });
  assert.ok(t instanceof TerminalClient);
  await t.shellReady();
  const me = await httpsRequest(base, '/api/v1/me', { headers: { cookie } });
  const csrf = (JSON.parse(me.body) as { csrf: string }).csrf;
  const out = await httpsRequest(base, '/api/v1/session', { method: 'DELETE', headers: { cookie, origin: new URL(base).origin, 'x-ferry-csrf': csrf } });
  assert.equal(out.status, 204, out.body);
  await t.until(() => t.closed, 'the close');
  const last = t.frames.at(-1);
  assert.ok(last?.type === 'error' && last.code === 'FERRY_PERMISSION_DENIED' && /access revoked: console session logout/.test(last.message), JSON.stringify(last));
});

test("the sessions API names a terminal's recording, live and after it ended", async () => {
  const cookie = await cookieOf('admin');
  const t = await open('admin', newQuery('cam'));
  await t.shellReady();
  const live = JSON.parse((await httpsRequest(base, '/api/v1/sessions?live=true', { headers: { cookie } })).body) as { sessions: { id: string; kind: string; recordingId: string | null }[] };
  const view = live.sessions.find((s) => s.kind === 'console');
  assert.ok(view, JSON.stringify(live));
  const recording = e.f.relay.store.listRecordings({ limit: 1000 }).find((r) => r.sessionId === view.id);
  assert.ok(recording && view.recordingId === recording.id, `live view ${JSON.stringify(view)} names its recording`);
  t.send({ type: 'close' });
  await t.until(() => t.closed, 'the close');
  await eventually(() => e.f.relay.consoles.stats().live === 0, 5_000, 'the terminal gone');
  const past = JSON.parse((await httpsRequest(base, '/api/v1/sessions?live=false', { headers: { cookie } })).body) as { sessions: { id: string; recordingId: string | null }[] };
  assert.equal(past.sessions.find((s) => s.id === view.id)?.recordingId, recording.id);
});
