// Covers src/relay/sessions.ts: caps per user and per device, bytes each way, why a reach
// ended (each side, idle timeout, revocation, link lost, shutdown), on in-memory streams.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { pipeBoth } from '../../src/net/pipe.ts';
import { SessionTracker, type SessionLimits } from '../../src/relay/sessions.ts';
import type { AuditEntry } from '../../src/relay/store.ts';
import type { Principal } from '../../src/relay/principal.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { streamPair } from '../helpers/stream-pair.ts';

const alice: Principal = { kind: 'ssh', user: 'alice', keyFingerprint: 'SHA256:a', remoteAddress: '192.0.2.7' };
const bob: Principal = { kind: 'ssh', user: 'bob', keyFingerprint: 'SHA256:b', remoteAddress: '192.0.2.8' };

function tracker(limits: Partial<SessionLimits> = {}) {
  const clock = new FakeClock();
  const rows: AuditEntry[] = [];
  const waiters: (() => void)[] = [];
  const t = new SessionTracker({
    clock, limits: { maxSessionsPerUser: 32, maxSessionsPerDevice: 16, sessionIdleTimeoutMs: 0, ...limits },
    audit: (e) => { rows.push(e); for (const w of waiters.splice(0)) w(); },
  });
  /** Resolves with the first row for `action` (waiting for it to be written). */
  const row = (action: string): Promise<AuditEntry> => new Promise((resolve) => {
    const check = () => {
      const r = rows.find((x) => x.action === action);
      if (r) resolve(r); else waiters.push(check);
    };
    check();
  });
  return { clock, rows, t, row };
}

/** A reach from `p` to `device`: the operator's end and the device's end of the two joined streams. */
function reach(t: SessionTracker, p: Principal, device: string, link: object = {}) {
  const conn = t.connect(p, () => {});
  const ticket = t.admit(conn, device, link);
  if ('refused' in ticket) throw new Error(ticket.refused);
  const [operator, clientSide] = streamPair();
  const [deviceSide, onDevice] = streamPair();
  const info = ticket.start(clientSide, deviceSide, pipeBoth)!;
  return { conn, info, operator, onDevice, clientSide, deviceSide };
}

describe('caps', () => {
  test('the N+1th session of one user is refused with a message naming the flag; a cancelled place is given back', () => {
    const { t } = tracker({ maxSessionsPerUser: 2 });
    const conn = t.connect(alice, () => {});
    const first = t.admit(conn, 'cam-1', {});
    const second = t.admit(conn, 'cam-2', {});
    assert.ok(!('refused' in first) && !('refused' in second));
    const third = t.admit(t.connect(alice, () => {}), 'cam-3', {});
    assert.ok('refused' in third);
    assert.match(third.refused, /'alice' already has 2 sessions open.*--max-sessions-per-user 2/);
    assert.ok(!('refused' in t.admit(t.connect(bob, () => {}), 'cam-1', {})), 'another user is not held back');
    first.cancel();
    first.cancel();
    assert.ok(!('refused' in t.admit(conn, 'cam-3', {})), 'one place was given back, once');
    assert.ok('refused' in t.admit(conn, 'cam-4', {}));
  });

  test('the N+1th session to one device is refused, whoever asks', () => {
    const { t } = tracker({ maxSessionsPerDevice: 1 });
    assert.ok(!('refused' in t.admit(t.connect(alice, () => {}), 'cam', {})));
    const r = t.admit(t.connect(bob, () => {}), 'cam', {});
    assert.ok('refused' in r);
    assert.match(r.refused, /device 'cam' already has 1 sessions open.*--max-sessions-per-device 1/);
  });

  test('a session that ended gives its place back', async () => {
    const { t, row } = tracker({ maxSessionsPerUser: 1 });
    const r = reach(t, alice, 'cam');
    r.clientSide.destroy();
    await row('reach.end');
    assert.ok(!('refused' in t.admit(r.conn, 'cam', {})));
  });
});

describe('rows', () => {
  test('reach.start and reach.end carry the session id, bytes each way and who closed', async () => {
    const { t, row } = tracker();
    const r = reach(t, alice, 'cam');
    const start = await row('reach.start');
    assert.deepEqual(start, { at: 1_000_000, actor: 'alice', action: 'reach.start', target: 'cam', detail: { session: r.info.id, kind: 'jump', remote: '192.0.2.7' } });
    r.onDevice.resume();
    r.operator.resume();
    const toDevice = once(r.onDevice, 'end');
    r.operator.write(Buffer.alloc(70_000, 1));
    r.operator.end(Buffer.alloc(30_000, 2));
    await toDevice;
    r.onDevice.end(Buffer.alloc(1234));
    const end = await row('reach.end');
    assert.equal(end.actor, 'alice');
    assert.equal(end.target, 'cam');
    assert.deepEqual({ ...end.detail, durationMs: 0 }, { session: r.info.id, kind: 'jump', started: 1_000_000, durationMs: 0, bytesIn: 100_000, bytesOut: 1234, why: 'client closed' });
    assert.equal(t.reaches().length, 0);
  });

  test('totals() sums reaches and bytes of ended and live reaches (what /metrics reads)', async () => {
    const { t, row } = tracker();
    assert.deepEqual(t.totals(), { reaches: 0, bytesIn: 0, bytesOut: 0 });
    const ended = reach(t, alice, 'cam');
    ended.onDevice.resume();
    ended.operator.resume();
    const arrived = once(ended.onDevice, 'end');
    ended.operator.end(Buffer.alloc(500));
    await arrived;
    ended.onDevice.end(Buffer.alloc(20));
    await row('reach.end');
    const live = reach(t, bob, 'cam');
    live.onDevice.resume();
    const got = once(live.onDevice, 'data');
    live.operator.write(Buffer.alloc(7));
    await got;
    assert.deepEqual(t.totals(), { reaches: 2, bytesIn: 507, bytesOut: 20 });
  });

    test('the device closing first is "device closed"', async () => {
    const { t, row } = tracker();
    const r = reach(t, alice, 'cam');
    r.deviceSide.destroy();
    assert.equal((await row('reach.end')).detail.why, 'device closed');
  });
});

describe('ends', () => {
  test('a session that moves no byte for the idle timeout ends as "idle timeout"; traffic pushes the end back', async () => {
    const { t, row, clock } = tracker({ sessionIdleTimeoutMs: 10_000 });
    const r = reach(t, alice, 'cam');
    r.onDevice.resume();
    clock.advance(6_000);
    r.operator.write('x');
    await once(r.onDevice, 'data');
    clock.advance(6_000);
    assert.equal(t.reaches().length, 1, 'still open: it moved a byte 6 s ago');
    clock.advance(4_000);
    const end = await row('reach.end');
    assert.equal(end.detail.why, 'idle timeout');
    assert.equal(end.detail.bytesIn, 1);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });

  test('endReaches ends what the caller names, with its reason, and leaves the rest', async () => {
    const { t, row } = tracker();
    reach(t, alice, 'cam');
    reach(t, bob, 'cam');
    const n = t.endReaches((r) => (r.user === 'alice' ? "access revoked: role 'ops' no longer covers device 'cam'" : null));
    assert.equal(n, 1);
    const end = await row('reach.end');
    assert.equal(end.actor, 'alice');
    assert.equal(end.detail.why, "access revoked: role 'ops' no longer covers device 'cam'");
    assert.deepEqual(t.reaches().map((r) => r.user), ['bob']);
  });

  test('a lost link ends only its own reaches, as "link lost"', async () => {
    const { t, row } = tracker();
    const link = {};
    reach(t, alice, 'cam', link);
    reach(t, bob, 'cam', {});
    t.linkClosed(link);
    const end = await row('reach.end');
    assert.equal(end.actor, 'alice');
    assert.equal(end.detail.why, 'link lost');
    assert.equal(t.reaches().length, 1);
  });

  test('endConnections closes the named connections and their reaches as access revoked', async () => {
    const { t, row } = tracker();
    const ended: string[] = [];
    const conn = t.connect(alice, (why) => ended.push(why));
    const ticket = t.admit(conn, 'cam', {});
    assert.ok(!('refused' in ticket));
    const [, clientSide] = streamPair();
    const [deviceSide] = streamPair();
    ticket.start(clientSide, deviceSide, pipeBoth);
    t.connect(bob, () => ended.push('bob'));
    assert.equal(t.endConnections((p) => (p.user === 'alice' ? 'key SHA256:a was removed' : null)), 1);
    assert.deepEqual(ended, ['key SHA256:a was removed']);
    assert.equal((await row('reach.end')).detail.why, 'access revoked: key SHA256:a was removed');
    assert.deepEqual(t.connections().map((c) => c.principal.user), ['bob']);
  });

  test('a channel that finishes opening after its connection was ended is not let through', () => {
    const { t, rows } = tracker({ maxSessionsPerUser: 1 });
    const conn = t.connect(alice, () => {});
    const ticket = t.admit(conn, 'cam', {});
    assert.ok(!('refused' in ticket));
    t.endConnections(() => 'user removed');
    const [, clientSide] = streamPair();
    const [deviceSide] = streamPair();
    assert.equal(ticket.start(clientSide, deviceSide, pipeBoth), null);
    assert.ok(clientSide.destroyed && deviceSide.destroyed);
    assert.deepEqual(rows, []);
    assert.ok(!('refused' in t.admit(t.connect(alice, () => {}), 'cam', {})), 'the place was given back');
  });

  test('shutdown ends everything as "relay shutdown"', async () => {
    const { t, row } = tracker();
    const ended: string[] = [];
    const conn = t.connect(alice, (why) => ended.push(why));
    const ticket = t.admit(conn, 'cam', {});
    assert.ok(!('refused' in ticket));
    ticket.start(streamPair()[1], streamPair()[0], pipeBoth);
    t.shutdown();
    assert.equal((await row('reach.end')).detail.why, 'relay shutdown');
    assert.deepEqual(ended, ['relay shutdown']);
  });
});

describe('console reaches', () => {
  test('a console reach has its kind and login in both rows, and tells its owner why it ended', async () => {
    const { t, rows, row } = tracker();
    const conn = t.connect(alice, () => {});
    const whys: string[] = [];
    const ticket = t.admit(conn, 'cam', {}, { kind: 'console', login: 'pi', onEnd: (why) => whys.push(why) });
    if ('refused' in ticket) throw new Error(ticket.refused);
    const [, clientSide] = streamPair();
    const [deviceSide] = streamPair();
    const info = ticket.start(clientSide, deviceSide, pipeBoth)!;
    assert.deepEqual([info.kind, info.login], ['console', 'pi']);
    assert.equal(t.endReaches((r) => (r.kind === 'console' && r.login === 'pi' ? "access revoked: 'alice' may not log in as 'pi'" : null)), 1);
    const end = await row('reach.end');
    assert.deepEqual(rows.find((r) => r.action === 'reach.start')!.detail, { session: info.id, kind: 'console', login: 'pi', remote: '192.0.2.7' });
    assert.deepEqual([end.detail.kind, end.detail.login, end.detail.why], ['console', 'pi', "access revoked: 'alice' may not log in as 'pi'"]);
    assert.deepEqual(whys, ["access revoked: 'alice' may not log in as 'pi'"], 'told once, after the row');
  });

  test('a jump reach still writes no login (the relay does not know it)', async () => {
    const { t, row } = tracker();
    const r = reach(t, alice, 'cam');
    assert.deepEqual([r.info.kind, r.info.login], ['jump', null]);
    assert.equal('login' in (await row('reach.start')).detail, false);
  });
});
