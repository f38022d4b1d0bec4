/**
 * The console's HTTP API (issue #11, docs/api.md): every route over real HTTPS against a
 * real relay, signed in through one-time links; the policy of the operations applies (an
 * operator without a role sees no device and gets the same refusal as for a nonexistent
 * one); paging over 300 devices in the store; errors map to their statuses; sessions live
 * (a real ssh -J reach) and past; a recording's .cast.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeToken } from '../../src/protocol/token.ts';
import { addRole, addUser, createLoginLink, createToken, secretHash } from '../../src/relay/operations/index.ts';
import { startRecording } from '../../src/relay/recordings.ts';
import { systemClock } from '../../src/common/clock.ts';
import { parsePublicKey } from '../../src/common/ssh-keys.ts';
import { eventually, fileCleanup, makeKey } from '../helpers/env.ts';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { ssh } from '../helpers/ssh-client.ts';
import { WebClient } from '../helpers/web-client.ts';

const HTTP = { httpListen: { host: '127.0.0.1', port: 0 } };

describe('the HTTP API', { concurrency: false }, () => {
  const suite = fileCleanup(after);
  let f: Fixture;
  let admin: WebClient;
  let olga: WebClient;
  let olgaKey: { path: string; pub: string };

  const signedIn = async (user: string) => {
    const web = WebClient.of(f.relay, join(f.dir, 'relay'));
    const r = await web.signIn(f.operate(createLoginLink, { user }).url);
    assert.equal(r.status, 200, r.text);
    return web;
  };

  before(async () => {
    f = await startFixture(suite, HTTP);
    // 300 devices in the store (enrolled with one token, never linked), one online, one in Berlin.
    const made = f.operate(createToken, { uses: 302 });
    const claims = (decodeToken(made.token) as { claims: { id: string; secret: string } }).claims;
    for (let n = 0; n < 300; n++) {
      f.relay.store.redeemToken({ id: claims.id, secretHash: secretHash(claims.secret), requestedName: `dev-${String(n).padStart(3, '0')}`, fallbackName: null, keyFingerprint: `SHA256:fake${n}`, keyLine: `ssh-ed25519 AAAAfake${n}`, now: Date.now() });
    }
    f.relay.store.setDeviceLabels('dev-007', { site: 'berlin' });
    f.relay.store.setDeviceStatus('dev-007', 'approved');
    await f.device('zz-online');
    olgaKey = makeKey(f.dir, 'olga_key');
    f.operate(addRole, { name: 'berlin', devices: ['site=berlin'], logins: ['pi'] });
    f.operate(addUser, { name: 'olga', keys: [olgaKey.pub], roles: ['berlin'] });
    f.operate(addUser, { name: 'nobody', keys: [makeKey(f.dir, 'nobody_key').pub], roles: ['berlin'] });
    admin = await signedIn('admin');
    olga = await signedIn('olga');
  });

  test('every route needs a session: 401 FERRY_AUTH_REFUSED without one', async () => {
    const anon = WebClient.of(f.relay, join(f.dir, 'relay'));
    for (const [method, path] of [['GET', '/api/v1/devices'], ['GET', '/api/v1/devices/zz-online'], ['GET', '/api/v1/sessions'], ['GET', '/api/v1/recordings'], ['GET', '/api/v1/audit'],
      ['GET', '/api/v1/tokens'], ['GET', '/api/v1/users'], ['GET', '/api/v1/roles'], ['POST', '/api/v1/devices/dev-001/approve'], ['DELETE', '/api/v1/users/olga']] as const) {
      const r = await anon.request(method, path);
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.equal(r.json.error.code, 'FERRY_AUTH_REFUSED');
    }
  });

  test('GET /devices pages on the server: online first, then by name; total, visible, offset, limit', async () => {
    const first = await admin.request('GET', '/api/v1/devices');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.total, 301);
    assert.equal(first.json.visible, 301);
    assert.equal(first.json.limit, 50);
    assert.equal(first.json.offset, 0);
    assert.equal(first.json.devices.length, 50);
    assert.equal(first.json.devices[0].name, 'zz-online', 'online first');
    assert.equal(first.json.devices[0].online, true);
    assert.equal(first.json.devices[1].name, 'dev-000');
    const last = await admin.request('GET', '/api/v1/devices?offset=250&limit=200');
    assert.equal(last.json.devices.length, 51);
    assert.equal(last.json.devices.at(-1).name, 'dev-299');
    const q = await admin.request('GET', '/api/v1/devices?q=DEV-01&limit=200');
    assert.equal(q.json.total, 10, 'q is a case-insensitive substring');
    assert.deepEqual((await admin.request('GET', '/api/v1/devices?label=site=berlin')).json.devices.map((d: { name: string }) => d.name), ['dev-007']);
    assert.equal((await admin.request('GET', '/api/v1/devices?online=true')).json.total, 1);
    assert.equal((await admin.request('GET', '/api/v1/devices?online=false')).json.total, 300);
    assert.equal((await admin.request('GET', '/api/v1/devices?status=pending')).json.total, 299);
    const tooMany = await admin.request('GET', '/api/v1/devices?limit=201');
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.json.error.code, 'FERRY_USAGE');
    assert.match(tooMany.json.error.message, /limit must be a whole number from 1 to 200/);
    const bad = await admin.request('GET', '/api/v1/devices?online=maybe&offset=-1&status=lost');
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /online must be true or false/);
    assert.match(bad.json.error.message, /offset must be a whole number/);
  });

  test('policy: an operator sees only what their roles cover; a hidden device is refused as a missing one', async () => {
    const list = await olga.request('GET', '/api/v1/devices');
    assert.deepEqual(list.json.devices.map((d: { name: string }) => d.name), ['dev-007']);
    assert.equal(list.json.visible, 1);
    const nobody = await signedIn('nobody');
    f.relay.store.setUserRoles('nobody', []);
    const none = await nobody.request('GET', '/api/v1/devices');
    assert.equal(none.status, 200);
    assert.equal(none.json.total, 0);
    assert.equal(none.json.visible, 0);

    const hidden = await olga.request('GET', '/api/v1/devices/zz-online');
    const missing = await olga.request('GET', '/api/v1/devices/no-such');
    assert.equal(hidden.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(hidden.json.error.code, 'FERRY_NOT_FOUND');
    assert.equal(hidden.json.error.message.replace('zz-online', 'NAME'), missing.json.error.message.replace('no-such', 'NAME'), 'the same words for both');

    const mine = await olga.request('GET', '/api/v1/devices/dev-007');
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.json.logins, ['pi']);
    assert.equal(mine.json.console.available, false);
    assert.match(mine.json.console.why, /offline/);
    const online = await admin.request('GET', '/api/v1/devices/zz-online');
    assert.deepEqual(online.json.logins, ['*']);
    assert.deepEqual(online.json.console, { available: true, why: null });
    assert.match((await admin.request('GET', '/api/v1/devices/dev-001')).json.console.why, /pending/);

    const refused = await olga.request('POST', '/api/v1/devices/dev-007/revoke');
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.code, 'FERRY_PERMISSION_DENIED');
    assert.match(refused.json.error.message, /'olga' may not run device\.revoke/);
    assert.equal(f.relay.store.listAudit({ action: 'action.refused', limit: 1 })[0]!.actor, 'olga');
    for (const path of ['/api/v1/audit', '/api/v1/users', '/api/v1/tokens', '/api/v1/roles', '/api/v1/recordings']) {
      assert.equal((await olga.request('GET', path)).status, 403, path);
    }
  });

  test('device approve, revoke, labels and remove, each audited as the web user', async () => {
    const ok = await admin.request('POST', '/api/v1/devices/dev-001/approve');
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { name: 'dev-001', result: 'approved' });
    const row = f.relay.store.listAudit({ action: 'device.approve', limit: 1 })[0]!;
    assert.equal(row.actor, 'admin');
    assert.equal(row.target, 'dev-001');
    const labels = await admin.request('PATCH', '/api/v1/devices/dev-001/labels', { body: { set: { site: 'berlin', rack: '4' }, remove: [] } });
    assert.equal(labels.status, 200, labels.text);
    assert.deepEqual(labels.json.labels, { site: 'berlin', rack: '4' });
    assert.equal((await admin.request('PATCH', '/api/v1/devices/dev-001/labels', { body: { set: {}, remove: ['rack'] } })).json.labels.rack, undefined);
    const badLabel = await admin.request('PATCH', '/api/v1/devices/dev-001/labels', { body: { set: { 'Bad Key': 'x' } } });
    assert.equal(badLabel.status, 400);
    assert.equal((await olga.request('GET', '/api/v1/devices')).json.total, 2, 'the label change gives olga the device at once');
    assert.equal((await admin.request('POST', '/api/v1/devices/dev-002/revoke')).json.result, 'revoked');
    const again = await admin.request('POST', '/api/v1/devices/dev-002/approve');
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'FERRY_CONFLICT');
    assert.equal((await admin.request('DELETE', '/api/v1/devices/dev-003')).json.result, 'removed');
    const gone = await admin.request('DELETE', '/api/v1/devices/dev-003');
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'FERRY_NOT_FOUND');
  });

  test('tokens: create (with the agent command), list, revoke', async () => {
    const made = await admin.request('POST', '/api/v1/tokens', { body: { name: 'new-cam', labels: { site: 'berlin' }, ttl: '1h' } });
    assert.equal(made.status, 200, made.text);
    assert.match(made.json.token, /^ferry3\./);
    assert.equal(made.json.agentCommand, `sudo ferry agent --state-dir /var/lib/ferry-agent --token ${made.json.token}`);
    assert.ok(Math.abs(Date.parse(made.json.expiresAt) - Date.now() - 3_600_000) < 60_000);
    const list = await admin.request('GET', '/api/v1/tokens');
    assert.ok(list.json.tokens.some((t: { id: string; name: string }) => t.id === made.json.id && t.name === 'new-cam'));
    assert.ok(!JSON.stringify(list.json).includes(made.json.token), 'never the secret');
    const bad = await admin.request('POST', '/api/v1/tokens', { body: { ttl: 'soon', uses: 0 } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /"ttl" must be a duration/);
    assert.equal((await admin.request('DELETE', `/api/v1/tokens/${made.json.id}`)).json.result, 'revoked');
    assert.equal((await admin.request('DELETE', `/api/v1/tokens/${made.json.id}`)).status, 409);
    assert.equal((await admin.request('GET', '/api/v1/tokens?all=true')).json.tokens.find((t: { id: string }) => t.id === made.json.id).state, 'revoked');
  });

  test('users: add, roles, keys (a fingerprint with / in the path), remove', async () => {
    const key = makeKey(f.dir, 'una_key');
    const added = await admin.request('POST', '/api/v1/users', { body: { name: 'una', key: key.pub, roles: ['berlin'] } });
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(added.json.roles, ['berlin']);
    assert.equal((await admin.request('POST', '/api/v1/users', { body: { name: 'una', key: key.pub } })).status, 409);
    const badKey = await admin.request('POST', '/api/v1/users', { body: { name: 'vera', key: 'ssh-rsa AAAA' } });
    assert.equal(badKey.status, 400);
    assert.equal((await admin.request('POST', '/api/v1/users', { body: {} })).json.error.message, 'give "name" in the body\ngive "key" in the body');
    assert.deepEqual((await admin.request('PUT', '/api/v1/users/una/roles', { body: { roles: ['operator'] } })).json.roles, ['operator']);
    assert.equal((await admin.request('PUT', '/api/v1/users/una/roles', { body: { roles: ['nope'] } })).status, 400);
    // A base64 fingerprint holds '/' about half the time: keep making keys until one does.
    let second = makeKey(f.dir, 'una_key2');
    for (let n = 3; !parsePublicKey(second.pub).fingerprint.includes('/'); n++) second = makeKey(f.dir, `una_key${n}`);
    const k = await admin.request('POST', '/api/v1/users/una/keys', { body: { key: second.pub } });
    assert.equal(k.status, 200, k.text);
    const users = (await admin.request('GET', '/api/v1/users')).json.users as { name: string; keys: string[] }[];
    const una = users.find((u) => u.name === 'una')!;
    assert.equal(una.keys.length, 2);
    const fp = una.keys.find((x) => x === k.json.key)!;
    const rm = await admin.request('DELETE', `/api/v1/users/una/keys/${encodeURIComponent(fp)}`);
    assert.equal(rm.status, 200, rm.text);
    assert.equal(rm.json.key, fp);
    assert.equal((await admin.request('DELETE', '/api/v1/users/una')).json.result, 'removed');
    assert.equal((await admin.request('DELETE', '/api/v1/users/una')).status, 404);
  });

  test('roles: add, edit, list, remove; the last manager of access cannot be taken away', async () => {
    const add = await admin.request('POST', '/api/v1/roles', { body: { name: 'munich', devices: ['site=munich'], logins: ['pi'], actions: ['device.approve'] } });
    assert.equal(add.status, 200, add.text);
    assert.deepEqual(add.json.actions, ['device.approve']);
    assert.equal((await admin.request('POST', '/api/v1/roles', { body: { name: 'munich', devices: [], logins: [] } })).status, 409);
    const badRole = await admin.request('POST', '/api/v1/roles', { body: { name: 'x', devices: ['*'], logins: ['*'], actions: ['fly'] } });
    assert.equal(badRole.status, 400);
    assert.match(badRole.json.error.message, /action 'fly' is not known/);
    const edit = await admin.request('PUT', '/api/v1/roles/munich', { body: { logins: ['pi', 'root'] } });
    assert.deepEqual(edit.json.logins, ['pi', 'root']);
    assert.equal((await admin.request('PUT', '/api/v1/roles/nope', { body: { logins: ['pi'] } })).status, 404);
    assert.ok((await admin.request('GET', '/api/v1/roles')).json.roles.some((r: { name: string }) => r.name === 'munich'));
    assert.equal((await admin.request('DELETE', '/api/v1/roles/munich')).json.result, 'removed');
    const last = await admin.request('DELETE', '/api/v1/roles/admin');
    assert.equal(last.status, 409);
    assert.match(last.json.error.message, /nobody who can manage access/);
  });

  test('audit: filters, paging back with before, verify', async () => {
    const r = await admin.request('GET', '/api/v1/audit?action=device.*&actor=admin&limit=2');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.entries.length, 2);
    assert.ok(r.json.entries.every((e: { action: string; actor: string }) => e.action.startsWith('device.') && e.actor === 'admin'));
    const older = await admin.request('GET', `/api/v1/audit?action=device.*&limit=100&before=${r.json.entries[0].id}`);
    assert.ok(older.json.entries.length >= 1);
    assert.ok(older.json.entries.every((e: { id: number }) => e.id < r.json.entries[0].id));
    assert.equal((await admin.request('GET', '/api/v1/audit?target=dev-001&action=device.approve')).json.entries.length, 1);
    assert.equal((await admin.request('GET', '/api/v1/audit?since=1h')).status, 200);
    assert.equal((await admin.request('GET', '/api/v1/audit?since=yesterday')).status, 400);
    const v = await admin.request('GET', '/api/v1/audit/verify');
    assert.equal(v.json.ok, true);
    assert.ok(v.json.rows > 0);
  });

  test('sessions: a live ssh -J reach, then the same session past, with bytes and why it ended; operators see only their own', async () => {
    // The command outlives the test's look at it: the relay ends the reach below.
    const reach = ssh(f.admin, ['zz-online', 'echo hi; sleep 30']);
    const live = await eventually(async () => {
      const r = await admin.request('GET', '/api/v1/sessions?live=true');
      // Bytes both ways: the inner SSH session is under way, not just its channel opened.
      return r.json.sessions.find((s: { device: string; bytesOut: number; bytesIn: number }) => s.device === 'zz-online' && s.bytesOut > 0 && s.bytesIn > 0);
    }, 10_000, 'the live reach, with bytes both ways, in /sessions');
    assert.equal(live.live, true);
    assert.equal(live.user, 'admin');
    assert.equal(live.kind, 'jump');
    assert.equal(live.endedAt, null);
    assert.deepEqual((await olga.request('GET', '/api/v1/sessions')).json.sessions, [], 'not olga\'s');
    assert.deepEqual((await olga.request('GET', '/api/v1/sessions?user=admin')).json.sessions, []);
    f.relay.sessions.endReaches((r) => (r.id === live.id ? 'idle timeout' : null));
    await reach;
    const past = (await admin.request('GET', '/api/v1/sessions?live=false&device=zz-online')).json.sessions[0];
    assert.equal(past.id, live.id);
    assert.equal(past.live, false);
    assert.equal(past.endReason, 'idle timeout');
    assert.ok(past.bytesOut > 0 && past.bytesIn > 0, JSON.stringify(past));
    assert.equal(past.startedAt, live.startedAt);
    assert.ok(past.endedAt !== null && past.durationMs >= 0);
    assert.equal((await admin.request('GET', '/api/v1/sessions?limit=0')).status, 400);
  });

  test('recordings: list, one, the .cast with its type, ?download=1 as an attachment; recording.read needed', async () => {
    const rec = await startRecording({ store: f.relay.store, dataDir: join(f.dir, 'relay'), clock: systemClock }, { sessionId: 's-1', device: 'zz-online', user: 'admin', login: 'pi', width: 80, height: 24 });
    rec.recorder.output(Buffer.from('hello from the cast\r\n'));
    await rec.end();
    const list = await admin.request('GET', '/api/v1/recordings?device=zz-online');
    assert.equal(list.status, 200);
    assert.equal(list.json.recordings[0].id, rec.id);
    const cast = await admin.request('GET', `/api/v1/recordings/${rec.id}/cast`);
    assert.equal(cast.status, 200);
    assert.match(String(cast.headers['content-type']), /^application\/x-asciicast/);
    assert.equal(cast.headers['content-disposition'], undefined);
    const [header, ...events] = cast.text.trim().split('\n');
    assert.equal(JSON.parse(header!).version, 2);
    assert.ok(events.some((e) => JSON.parse(e)[2] === 'hello from the cast\r\n'));
    const dl = await admin.request('GET', `/api/v1/recordings/${rec.id}/cast?download=1`);
    assert.equal(dl.headers['content-disposition'], `attachment; filename="${rec.id}.cast"`);
    assert.equal((await admin.request('GET', '/api/v1/recordings/0123456789abcdef/cast')).status, 404);
    assert.equal((await olga.request('GET', `/api/v1/recordings/${rec.id}/cast`)).status, 403);
    // One recording's row, with the sha256 its recording.end row holds.
    const one = await admin.request('GET', `/api/v1/recordings/${rec.id}`);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual([one.json.id, one.json.sessionId, one.json.sha256], [rec.id, 's-1', list.json.recordings[0].sha256]);
    assert.match(one.json.sha256, /^[0-9a-f]{64}$/);
    assert.equal((await admin.request('GET', '/api/v1/recordings/0123456789abcdef')).status, 404);
    assert.equal((await olga.request('GET', `/api/v1/recordings/${rec.id}`)).status, 403);
  });

  test('bad JSON is a 400; an empty JSON body is no body; an unknown path a 404', async () => {
    const notJson = await admin.request('POST', '/api/v1/tokens', { headers: { 'content-type': 'application/json' }, raw: '{"name":' });
    assert.equal(notJson.status, 400, notJson.text);
    assert.equal(notJson.json.error.code, 'FERRY_USAGE');
    const proto = await admin.request('POST', '/api/v1/tokens', { headers: { 'content-type': 'application/json' }, raw: '{"__proto__":{"x":1}}' });
    assert.equal(proto.status, 400, proto.text);
    const empty = await admin.request('POST', '/api/v1/devices/dev-004/approve', { headers: { 'content-type': 'application/json' } });
    assert.equal(empty.status, 200, empty.text);
    assert.equal((await admin.request('GET', '/api/v1/nothing')).json.error.code, 'FERRY_NOT_FOUND');
  });
});
