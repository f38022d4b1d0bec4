/**
 * GET /api/v1/events (issue #11): the console's live view over real HTTPS. Devices coming
 * online and going offline, label changes and reaches arrive as they happen, only those the
 * user may see; the stream ends with the session (logout, user rm); a few streams per user;
 * a reader that does not keep up is dropped, not buffered for.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LIMITS } from '../../src/protocol/limits.ts';
import { addRole, addUser, createLoginLink, labelDevice, removeUser } from '../../src/relay/operations/index.ts';
import { fileCleanup, makeKey } from '../helpers/env.ts';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { ssh } from '../helpers/ssh-client.ts';
import { WebClient } from '../helpers/web-client.ts';

const HTTP = { httpListen: { host: '127.0.0.1', port: 0 } };

describe('the events stream', { concurrency: false }, () => {
  const suite = fileCleanup(after);
  let f: Fixture;

  const signedIn = async (user: string) => {
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    const r = await web.signIn(f.operate(createLoginLink, { user }).url);
    assert.equal(r.status, 200, r.text);
    return web;
  };

  before(async () => {
    f = await startFixture(suite, HTTP);
    f.operate(addRole, { name: 'berlin', devices: ['site=berlin'], logins: ['pi'] });
    f.operate(addUser, { name: 'olga', keys: [makeKey(f.dir, 'olga_key').pub], roles: ['berlin'] });
  });

  test('needs a session; is text/event-stream and starts with a retry hint', async () => {
    const anon = await WebClient.of(f.relay, join(f.dir, 'relay')).stream('/api/v1/events');
    assert.equal(anon.status, 401);
    const admin = await signedIn('admin');
    const s = await admin.stream('/api/v1/events');
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), /^text\/event-stream/);
    assert.equal(s.headers['cache-control'], 'no-store');
    s.close();
  });

  test('a device coming online, a label change and going offline arrive live; an operator sees only what her roles cover', async () => {
    const admin = await (await signedIn('admin')).stream('/api/v1/events');
    const olga = await (await signedIn('olga')).stream('/api/v1/events');
    const agent = await f.device('cam-a');
    const up = await admin.next((e) => e.event === 'device' && e.data.name === 'cam-a' && e.data.online === true, 'cam-a online');
    assert.equal(up.data.status, 'approved');
    // The label puts cam-a in olga's view: from then on she hears of it.
    f.operate(labelDevice, { name: 'cam-a', set: { site: 'berlin' }, remove: [] });
    f.relay.reconcile();
    await olga.next((e) => e.event === 'resync', 'resync after a change outside the relay\'s operations');
    assert.ok(!olga.events.some((e) => e.event === 'device' && e.data.name === 'cam-a'), 'olga heard nothing of cam-a before it was hers');
    await agent.stop();
    const down = await olga.next((e) => e.event === 'device' && e.data.name === 'cam-a' && e.data.online === false, 'cam-a offline, for olga');
    assert.equal(down.data.lastDisconnectReason, 'agent closed');
    await admin.next((e) => e.event === 'device' && e.data.name === 'cam-a' && e.data.online === false, 'cam-a offline, for admin');
    admin.close();
    olga.close();
  });

  test('a reach starting and ending arrives as session events, to its user and those with audit.read only', async () => {
    await f.device('cam-b');
    const admin = await (await signedIn('admin')).stream('/api/v1/events');
    const olga = await (await signedIn('olga')).stream('/api/v1/events');
    const r = await ssh(f.admin, ['cam-b', 'echo hi']);
    assert.equal(r.code, 0, r.stderr);
    const started = await admin.next((e) => e.event === 'session' && e.data.device === 'cam-b' && e.data.live === true, 'the session start');
    const ended = await admin.next((e) => e.event === 'session' && e.data.id === started.data.id && e.data.live === false, 'the session end');
    assert.equal(ended.data.user, 'admin');
    assert.equal(ended.data.kind, 'jump');
    assert.ok(ended.data.bytesOut > 0);
    assert.equal(typeof ended.data.endReason, 'string');
    // A marker olga may see, sent after: by the time it reaches her, the session events would have.
    f.relay.reconcile();
    await olga.next((e) => e.event === 'resync', 'the marker');
    assert.ok(!olga.events.some((e) => e.event === 'session'), 'olga is told of no session of admin\'s');
    admin.close();
    olga.close();
  });

  test('logout and user rm end the stream', { timeout: 30_000 }, async () => {
    const web = await signedIn('olga');
    const s = await web.stream('/api/v1/events');
    assert.equal((await web.request('DELETE', '/api/v1/session')).status, 204);
    await s.ended;
    const una = makeKey(f.dir, 'una_key');
    f.operate(addUser, { name: 'una', keys: [una.pub], roles: ['berlin'] });
    const unaWeb = await signedIn('una');
    const u = await unaWeb.stream('/api/v1/events');
    f.operate(removeUser, { name: 'una' });
    f.relay.reconcile();
    await u.ended;
    assert.equal((await unaWeb.stream('/api/v1/events')).status, 401);
  });

  test(`at most ${LIMITS.eventStreamsPerUser} streams per user: one more ends the oldest`, async () => {
    const web = await signedIn('admin');
    const streams = [];
    for (let n = 0; n < LIMITS.eventStreamsPerUser; n++) streams.push(await web.stream('/api/v1/events'));
    const oneMore = await web.stream('/api/v1/events');
    assert.equal(oneMore.status, 200);
    await streams[0]!.ended;
    f.relay.reconcile();
    for (const s of [...streams.slice(1), oneMore]) await s.next((e) => e.event === 'resync', 'a live stream still hears');
    for (const s of [...streams, oneMore]) s.close();
  });

  test('a reader that does not keep up is dropped, with what it holds bounded', { timeout: 60_000 }, async () => {
    // A device with large labels makes each event about 8 KiB.
    await f.device('cam-c');
    const big: Record<string, string> = {};
    for (let n = 0; n < 30; n++) big[`k${n}`] = 'x'.repeat(250);
    f.operate(labelDevice, { name: 'cam-c', set: big, remove: [] });
    const web = await signedIn('admin');
    const slow = await web.stream('/api/v1/events');
    const fast = await web.stream('/api/v1/events');
    slow.pause();
    // Far more than the socket buffers and the bound together.
    let sent = 0;
    // One event a turn of the event loop, as link changes come: the fast reader keeps up.
    for (let n = 0; n < 3000; n++) {
      f.relay.events.emit({ type: 'device', name: 'cam-c' });
      sent += 8 * 1024;
      await new Promise((r) => setImmediate(r));
    }
    slow.resume();
    await slow.ended;
    assert.ok(slow.bytes < sent / 2, `the slow reader got ${slow.bytes} of ${sent} bytes: it was dropped, not buffered for`);
    // The other stream is unaffected (it read as it went).
    f.relay.reconcile();
    await fast.next((e) => e.event === 'resync', 'the fast stream still open');
    fast.close();
  });
});
