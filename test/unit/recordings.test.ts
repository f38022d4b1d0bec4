// Covers src/relay/recordings.ts and the recordings table of src/relay/sqlite-store.ts: the
// file layout and modes, the row and the `recording.end` audit row with the file's sha256,
// closing recordings cut by a crash, retention on a fake clock, and the --recording-retention flag.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { relayConfigFromArgs } from '../../src/cli/relay-command.ts';
import { createLogger } from '../../src/common/log.ts';
import { parseCast } from '../../src/protocol/asciicast.ts';
import { closeCrashedRecordings, expireRecordings, recordingPath, startRecording, startRetention } from '../../src/relay/recordings.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store } from '../../src/relay/store.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const DAY = 24 * 60 * 60 * 1000;
const root = mkdtempSync(join(tmpdir(), 'ferry-recordings-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
let dataDir: string;
let store: Store;
let clock: FakeClock;
beforeEach(() => {
  dataDir = join(root, `data-${++n}`);
  mkdirSync(dataDir, { mode: 0o700 });
  store = openSqliteStore(join(dataDir, 'ferry.db'));
  clock = new FakeClock();
  clock.advance(Date.UTC(2026, 2, 4, 23, 59, 0) - clock.now());
});
afterEach(() => store.close());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const START = { sessionId: 's-1', device: 'cam', user: 'alice', login: 'pi', width: 80, height: 24 };

async function record(over: Partial<typeof START> = {}, text = 'hello\r\n') {
  const live = await startRecording({ store, dataDir, clock }, { ...START, ...over });
  live.recorder.output(Buffer.from(text));
  clock.advance(3000);
  return live.end();
}

describe('recordings', () => {
  test('the file is recordings/YYYY/MM/DD/ID.cast (UTC start day), 0600 in 0700 dirs; ending writes its size and sha256 to the row and the audit chain', async () => {
    const live = await startRecording({ store, dataDir, clock }, START);
    assert.match(live.id, /^[0-9a-f]{16}$/);
    const path = `recordings/2026/03/04/${live.id}.cast`;
    assert.equal(recordingPath(live.id, clock.now()), path);
    const row = store.getRecording(live.id)!;
    assert.deepEqual(row, { id: live.id, sessionId: 's-1', device: 'cam', user: 'alice', login: 'pi', startedAt: clock.now(), endedAt: null, path, bytes: null, sha256: null });
    const file = join(dataDir, path);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    for (const d of ['recordings', 'recordings/2026', 'recordings/2026/03', 'recordings/2026/03/04']) assert.equal(statSync(join(dataDir, d)).mode & 0o777, 0o700, d);
    live.recorder.output(Buffer.from('ls\r\n'));
    clock.advance(2500);
    const ended = await live.end();
    assert.strictEqual(await live.end(), ended, 'ending twice gives the same record');
    const bytes = readFileSync(file);
    assert.deepEqual(ended, { ...row, endedAt: row.startedAt + 2500, bytes: bytes.length, sha256: sha(bytes) });
    assert.equal(parseCast(bytes.toString('utf8')).header.title, 'pi@cam (alice)');
    const [audit] = store.listAudit({ action: 'recording.end', limit: 10 });
    assert.deepEqual({ actor: audit!.actor, target: audit!.target, detail: audit!.detail }, {
      actor: 'alice', target: 'cam',
      detail: { recording: live.id, session: 's-1', device: 'cam', user: 'alice', login: 'pi', path, sha256: sha(bytes), bytes: bytes.length, durationMs: 2500 },
    });
    assert.equal(store.verifyAudit().ok, true);
  });

  test('store: list filters by device and user, newest first; get and remove', async () => {
    const a = await record({ device: 'cam', user: 'alice' });
    const b = await record({ device: 'door', user: 'alice' });
    const c = await record({ device: 'cam', user: 'bob' });
    assert.deepEqual(store.listRecordings({ limit: 10 }).map((r) => r.id), [c.id, b.id, a.id]);
    assert.deepEqual(store.listRecordings({ device: 'cam', limit: 10 }).map((r) => r.id), [c.id, a.id]);
    assert.deepEqual(store.listRecordings({ user: 'alice', limit: 10 }).map((r) => r.id), [b.id, a.id]);
    assert.deepEqual(store.listRecordings({ device: 'cam', user: 'bob', limit: 10 }).map((r) => r.id), [c.id]);
    assert.deepEqual(store.listRecordings({ limit: 1 }).map((r) => r.id), [c.id]);
    assert.deepEqual(store.listRecordings({ endedBefore: b.endedAt! + 1, limit: 10 }).map((r) => r.id), [b.id, a.id]);
    const live = await startRecording({ store, dataDir, clock }, START);
    assert.deepEqual(store.listRecordings({ unfinished: true, limit: 10 }).map((r) => r.id), [live.id]);
    assert.deepEqual(store.listRecordings({ endedBefore: clock.now() + 1, limit: 10 }).map((r) => r.id), [c.id, b.id, a.id], 'an unfinished one has not ended');
    await live.end();
    assert.equal(store.getRecording('0000000000000000'), null);
    assert.equal(store.removeRecording(a.id), true);
    assert.equal(store.removeRecording(a.id), false);
    assert.equal(store.getRecording(a.id), null);
    assert.throws(() => store.addRecording({ id: b.id, sessionId: 'x', device: 'd', user: 'u', login: 'l', startedAt: 1, path: 'p' }), { code: 'FERRY_CONFLICT' });
    assert.equal(store.finishRecording('nope', { endedAt: 1, bytes: 1, sha256: 'x' }), false);
  });

  test('a recording left open by a crash is closed at start as the disk has it, audited as crashed', async () => {
    const live = await startRecording({ store, dataDir, clock }, START);
    live.recorder.output(Buffer.from('before the crash\r\n'));
    await live.recorder.flush();
    // The relay dies here: no close, no end. The next start finds the row open.
    const bytes = readFileSync(join(dataDir, store.getRecording(live.id)!.path));
    assert.equal(closeCrashedRecordings({ store, dataDir, now: clock.now() + 60_000 }), 1);
    const r = store.getRecording(live.id)!;
    assert.equal(r.bytes, bytes.length);
    assert.equal(r.sha256, sha(bytes));
    assert.ok(r.endedAt !== null && r.endedAt >= r.startedAt);
    const [audit] = store.listAudit({ action: 'recording.end', limit: 10 });
    assert.equal(audit!.detail.crashed, true);
    assert.equal(audit!.detail.sha256, sha(bytes));
    assert.equal(closeCrashedRecordings({ store, dataDir, now: clock.now() }), 0, 'only once');
  });

  test('retention on a fake clock: files and rows past it go, each audited with the sha256 of what was removed; newer ones stay', async () => {
    const old = await record({ sessionId: 'old' }, 'old\r\n');
    clock.advance(10 * DAY);
    const recent = await record({ sessionId: 'recent' }, 'recent\r\n');
    const oldFile = join(dataDir, old.path);
    // Changed on disk after it ended: the expire row says what was actually removed, beside what was recorded.
    writeFileSync(oldFile, 'tampered\n');
    const log = createLogger('silent', 'test');
    const retention = startRetention({ store, dataDir, clock, retentionMs: 90 * DAY, sweepMs: 60 * 60 * 1000, log });
    assert.equal(existsSync(oldFile), true, 'nothing is 90 days old yet');
    clock.advance(80 * DAY - 2 * 60 * 60 * 1000);
    assert.equal(existsSync(oldFile), true, 'still under 90 days');
    clock.advance(3 * 60 * 60 * 1000);
    assert.equal(existsSync(oldFile), false, 'removed by the sweep after its 90 days');
    assert.equal(store.getRecording(old.id), null);
    assert.notEqual(store.getRecording(recent.id), null);
    assert.equal(existsSync(join(dataDir, recent.path)), true);
    const rows = store.listAudit({ action: 'recording.expire', limit: 10 });
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0]!.detail, {
      recording: old.id, session: 'old', device: 'cam', user: 'alice', path: old.path,
      sha256: sha(Buffer.from('tampered\n')), bytes: 9, recordedSha256: old.sha256,
    });
    clock.advance(10 * DAY);
    assert.equal(store.getRecording(recent.id), null, 'the newer one goes at its own time');
    retention.stop();
    assert.equal(clock.pending, 0, 'stop cancels the sweep');
    assert.equal(store.verifyAudit().ok, true);
  });

  test('retention 0 keeps everything and sets no timer', async () => {
    const r = await record();
    clock.advance(3650 * DAY);
    const retention = startRetention({ store, dataDir, clock, retentionMs: 0, sweepMs: 1000, log: createLogger('silent', 'test') });
    assert.equal(clock.pending, 0);
    assert.equal(expireRecordings({ store, dataDir, now: clock.now(), retentionMs: 0 }), 0);
    assert.notEqual(store.getRecording(r.id), null);
    retention.stop();
  });

  test('--recording-retention: a duration, 0 or off; under 1h is refused', () => {
    const args = (v?: string) => ['--data-dir', '/tmp/x', ...(v === undefined ? [] : ['--recording-retention', v])];
    assert.equal(relayConfigFromArgs(args(), {}).config.recordingRetentionMs, 0);
    assert.equal(relayConfigFromArgs(args('90d'), {}).config.recordingRetentionMs, 90 * DAY);
    assert.equal(relayConfigFromArgs(args('off'), {}).config.recordingRetentionMs, 0);
    assert.equal(relayConfigFromArgs(args('0'), {}).config.recordingRetentionMs, 0);
    assert.throws(() => relayConfigFromArgs(args('30m'), {}), { code: 'FERRY_CONFIG_INVALID', message: /--recording-retention must be 0 \(keep forever\) or at least 1h/ });
  });
});
