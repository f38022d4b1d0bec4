// Console sessions (src/relay/console-session.ts): the relay's own SSH session to a device's
// built-in server over the device's link, the back end of the browser terminal. The real
// relay and agent in process: a shell runs a command and reports its exit status, a resize
// reaches `stty size`, the relay refuses a login the principal's roles do not allow (naming
// the rule), the DEVICE refuses a console login its pushed list does not allow even when the
// relay's check is bypassed, and a key other than the pinned relay key, and ends a live one
// itself when its list narrows; a role change ends a live session within a second; reach
// rows say kind 'console'. The login is the user running
// the tests; as root (CI) that is root, otherwise the agent's own user, so it runs either way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { eventually, fileCleanup, makeKey } from '../helpers/env.ts';
import { LOGIN, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import { isFerryError } from '../../src/common/errors.ts';
import { hostKeyPath } from '../../src/relay/relay.ts';
import type { ConsoleSession } from '../../src/relay/console-session.ts';
import type { Principal } from '../../src/relay/principal.ts';

/** A web console session of `user`: the principal the browser terminal will have. */
const web = (user: string): Principal => ({ kind: 'web', user, sessionId: `test-${user}`, remoteAddress: '127.0.0.1' });

const suite = fileCleanup(after);
let e: EmbeddedFixture;
const TERMINAL = { cols: 80, rows: 24, term: 'xterm-256color' };

interface Row { actor: string; action: string; target: string | null; source: string; detail: Record<string, unknown> }
function audit(action: string): Row[] {
  const r = e.f.command(['audit', '--json', '--limit', '10000', '--action', action]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

/** Collects a session's output as text; `until` waits for a pattern in it. */
function reader(s: ConsoleSession) {
  let text = '';
  const waiters = new Set<() => void>();
  s.output.on('data', (d: Buffer) => { text += d.toString('utf8'); for (const w of [...waiters]) w(); });
  return {
    text: () => text,
    until(pattern: RegExp, what: string, timeoutMs = 10_000): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern);
          if (m) { done(); resolve(m); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; output so far:\n${text}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * Waits until the shell takes input: keystrokes that arrive before the shell has set up its
 * terminal may be dropped (as when one types before a login prompt), so it asks again.
 */
async function shellReady(s: ConsoleSession, out: ReturnType<typeof reader>): Promise<void> {
  const timer = setInterval(() => s.write(Buffer.from('echo rea""dy\r')), 500);
  s.write(Buffer.from('echo rea""dy\r'));
  try {
    await out.until(/^ready\r?$/m, 'the shell');
  } finally {
    clearInterval(timer);
  }
}

const ended = (s: ConsoleSession) => new Promise<string>((r) => s.once('end', r));
const exited = (s: ConsoleSession) => new Promise<{ code: number | null; signal: string | null }>((r) => s.once('exit', (code, signal) => r({ code, signal })));

/**
 * Logs in to `device`'s built-in server over a channel on its link, as the relay would but
 * without the relay's policy check: with `privateKey` as `username`. Resolves with how the
 * login went.
 */
async function rawLogin(device: string, username: string, privateKey: string | Buffer): Promise<'ready' | 'refused'> {
  const link = e.f.relay.registry.get(device)!;
  const stream: Duplex = await link.openChannel({ address: '127.0.0.1', port: 0 }, 5_000);
  const client = new ssh2.Client();
  const hostKey = Buffer.from(e.f.relay.store.getDevice(device)!.hostKeyLine!.split(' ')[1]!, 'base64');
  try {
    return await new Promise((resolve, reject) => {
      client.once('ready', () => resolve('ready'));
      client.once('error', (err: Error & { level?: string }) => (err.level === 'client-authentication' ? resolve('refused') : reject(err)));
      client.connect({ sock: stream as never, username, privateKey, hostVerifier: (key: Buffer) => key.equals(hostKey) });
    });
  } finally {
    client.end();
  }
}

before(async () => {
  e = await startEmbedded(suite, { cam: null });
  // A device whose agent sends SSH to an sshd of its own (the fixture's throwaway sshd).
  await e.f.device('plain');
  const dir = join(e.f.dir, 'console-keys');
  mkdirSync(dir);
  for (const [cmd, ok] of [
    [['role', 'add', 'console-login', '--devices', '*', '--logins', LOGIN], true],
    [['role', 'add', 'viewer', '--devices', '*', '--logins', 'pi'], true],
    [['user', 'add', 'alice', '--key', makeKey(dir, 'alice').pub, '--role', 'console-login'], true],
    [['user', 'add', 'bob', '--key', makeKey(dir, 'bob').pub, '--role', 'viewer'], true],
    [['role', 'add', 'carol-login', '--devices', '*', '--logins', LOGIN], true],
    [['user', 'add', 'carol', '--key', makeKey(dir, 'carol').pub, '--role', 'carol-login'], true],
  ] as const) {
    const r = e.f.command([...cmd]);
    assert.equal(r.code === 0, ok, `${cmd.join(' ')}: ${r.stderr}`);
  }
  e.f.relay.reconcile();
});

test('an admin opens a console session, runs a command and gets its output and exit status; the reach rows say console', async () => {
  const s = await e.f.relay.openConsoleSession(web('admin'), 'cam', LOGIN, TERMINAL);
  const out = reader(s);
  const exit = exited(s);
  const end = ended(s);
  await shellReady(s, out);
  assert.ok(s.write(Buffer.from('echo h""i; exit 3\r')));
  await out.until(/^hi\r?$/m, "the command's output");
  assert.deepEqual(await exit, { code: 3, signal: null });
  assert.equal(await end, 'device closed');
  const start = audit('reach.start').find((r) => r.detail.session === s.id);
  const stop = audit('reach.end').find((r) => r.detail.session === s.id);
  assert.ok(start && stop, 'reach.start and reach.end rows for the session');
  assert.deepEqual([start.actor, start.target, start.detail.kind, start.detail.login], ['admin', 'cam', 'console', LOGIN]);
  assert.deepEqual([stop.detail.kind, stop.detail.login, stop.detail.why], ['console', LOGIN, 'device closed']);
  assert.ok((stop.detail.bytesIn as number) >= 'echo h""i; exit 3\r'.length && (stop.detail.bytesOut as number) > 0, JSON.stringify(stop.detail));
  // The device reported the session as the operator's, marked as a console session.
  const reported = await eventually(() => audit('ssh.session.end').find((r) => r.source === 'device' && r.detail.via === 'console'), 5_000, "the device's session.end report");
  assert.deepEqual([reported.actor, reported.detail.login, reported.detail.exit], ['admin', LOGIN, 3]);
});

test('a resize reaches the shell: stty size follows it', async () => {
  const s = await e.f.relay.openConsoleSession(web('admin'), 'cam', LOGIN, { ...TERMINAL, cols: 40, rows: 10 });
  const out = reader(s);
  await shellReady(s, out);
  s.write(Buffer.from('stty size\r'));
  await out.until(/^10 40\r?$/m, 'the first size');
  s.resize(100, 30);
  s.write(Buffer.from('stty size\r'));
  await out.until(/^30 100\r?$/m, 'the size after the resize');
  const end = ended(s);
  s.close();
  assert.equal(await end, 'client closed');
  assert.equal(e.f.relay.sessions.reaches().some((r) => r.id === s.id), false);
});

test('the relay refuses a login that the principal\'s roles do not allow, naming the rule', async () => {
  await assert.rejects(e.f.relay.openConsoleSession(web('bob'), 'cam', LOGIN, TERMINAL), (err: unknown) => {
    assert.ok(isFerryError(err, 'FERRY_PERMISSION_DENIED'), String(err));
    assert.match(err.message, new RegExp(`'bob' may not log in to 'cam' as '${LOGIN}': roles viewer allow pi`));
    return true;
  });
  const row = audit('reach.refused').find((r) => r.actor === 'bob' && r.detail.kind === 'console');
  assert.ok(row, 'a reach.refused row');
  assert.equal(row.detail.login, LOGIN);
});

test('a terminal size or type out of bounds is refused before anything is opened', async () => {
  await assert.rejects(e.f.relay.openConsoleSession(web('admin'), 'cam', LOGIN, { ...TERMINAL, cols: 0 }), (err: unknown) => isFerryError(err, 'FERRY_USAGE') && /cols must be 1 to 1000, not 0/.test(err.message));
  await assert.rejects(e.f.relay.openConsoleSession(web('admin'), 'cam', LOGIN, { ...TERMINAL, term: 'xterm; id' }), /'xterm; id' is not a TERM name/);
  assert.equal(e.f.relay.sessions.reaches().length, 0);
});

test('a device whose agent uses --ssh-target has no console, and the relay says why', async () => {
  await assert.rejects(e.f.relay.openConsoleSession(web('admin'), 'plain', LOGIN, TERMINAL), /device 'plain' has no console: its agent sends SSH to the device's own sshd \(--ssh-target HOST:PORT\)/);
  assert.equal(e.f.relay.sessions.reaches().length, 0, 'the place taken under the caps was given back');
});

test('the device itself refuses a console login its pushed list does not allow, even with the relay key', async () => {
  const relayKey = readFileSync(hostKeyPath(join(e.f.dir, 'relay')), 'utf8');
  // The agent keeps the relay key its link verified against the pinned fingerprint.
  assert.equal((JSON.parse(readFileSync(join(e.f.dir, 'agent-cam', 'agent.json'), 'utf8')) as { relayHostKey?: string }).relayHostKey, e.f.relay.hostKeyLine);
  // The relay's key and a login the list grants: in (the control, so that the refusals below are the device's rule).
  assert.equal(await rawLogin('cam', `alice:${LOGIN}`, relayKey), 'ready');
  // bob's roles allow only 'pi': the device refuses, whatever the relay asks.
  assert.equal(await rawLogin('cam', `bob:${LOGIN}`, relayKey), 'refused');
  // An operator not in the list at all.
  assert.equal(await rawLogin('cam', `mallory:${LOGIN}`, relayKey), 'refused');
  const why = await eventually(() => audit('ssh.login.refused').find((r) => r.actor === 'bob' && r.detail.via === 'console'), 5_000, "the device's refusal report");
  assert.match(String(why.detail.why), new RegExp(`operator 'bob' may not log in as '${LOGIN}' on this device: role viewer allows logins only as pi`));
});

test('a key other than the pinned relay key may not use a console login name, even one the list knows', async () => {
  // The admin's own key is in the list with every login; as `admin:LOGIN` it is still refused.
  assert.equal(await rawLogin('cam', `admin:${LOGIN}`, readFileSync(e.f.adminKey.path)), 'refused');
  assert.equal(await rawLogin('cam', LOGIN, readFileSync(e.f.adminKey.path)), 'ready', 'the same key as a plain login (the control)');
  const why = await eventually(() => audit('ssh.login.refused').find((r) => r.actor === 'admin' && r.detail.via === 'console'), 5_000, "the device's refusal report");
  assert.match(String(why.detail.why), /only the relay's own key \(pinned at enrollment\) may use/);
});

test('the device ends a console login itself when its list no longer grants the login, whatever the relay does', async () => {
  const relayKey = readFileSync(hostKeyPath(join(e.f.dir, 'relay')), 'utf8');
  const link = e.f.relay.registry.get('cam')!;
  const stream: Duplex = await link.openChannel({ address: '127.0.0.1', port: 0 }, 5_000);
  // Straight to the device, past the relay's tracker: only the device can end this one.
  const client = new ssh2.Client();
  suite.after(() => client.end());
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ sock: stream as never, username: `carol:${LOGIN}`, privateKey: relayKey, hostVerifier: (key: Buffer) => key.equals(Buffer.from(e.f.relay.store.getDevice('cam')!.hostKeyLine!.split(' ')[1]!, 'base64')) });
  });
  const channel = await new Promise<import('ssh2').ClientChannel>((resolve, reject) => client.shell({ cols: 80, rows: 24, term: 'xterm' }, (err, ch) => (err ? reject(err) : resolve(ch))));
  let said = '';
  channel.on('data', (d: Buffer) => { said += d.toString(); });
  channel.stderr.on('data', (d: Buffer) => { said += d.toString(); });
  const r = e.f.command(['role', 'edit', 'carol-login', '--logins', 'pi']);
  assert.equal(r.code, 0, r.stderr);
  e.f.relay.reconcile();
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`the device did not end the login; it said:\n${said}`)), 3_000))]);
  assert.match(said, new RegExp(`operator 'carol' may not log in as '${LOGIN}' on this device: role carol-login allows logins only as pi; closing the console session`));
});

test('a role change ends a live console session within a second', async () => {
  const s = await e.f.relay.openConsoleSession(web('alice'), 'cam', LOGIN, TERMINAL);
  const out = reader(s);
  await shellReady(s, out);
  const end = ended(s);
  const changed = Date.now();
  const r = e.f.command(['role', 'edit', 'console-login', '--logins', 'pi']);
  assert.equal(r.code, 0, r.stderr);
  // What every front end does after a change (the SSH command line's onChange).
  e.f.relay.reconcile();
  const why = await end;
  const took = Date.now() - changed;
  assert.match(why, new RegExp(`^access revoked: 'alice' may not log in to 'cam' as '${LOGIN}': roles console-login allow pi`));
  assert.ok(took < 1_000, `ended after ${took} ms`);
  const row = audit('reach.end').find((x) => x.detail.session === s.id);
  assert.equal(row?.detail.why, why);
});
