// Recordings in a real relay process: one left open by a crash is closed at start with its
// sha256 audited, one past --recording-retention is removed at start, and `recordings` and
// `recording cat` give the same output over SSH and from the local CLI.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { systemClock } from '../../src/common/clock.ts';
import { parseCast } from '../../src/protocol/asciicast.ts';
import { openDataDir } from '../../src/relay/relay.ts';
import { startRecording } from '../../src/relay/recordings.ts';
import { makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnRelay } from '../helpers/fixture.ts';
import { relayCommand, sshSetup } from '../helpers/ssh-client.ts';

const HOUR = 60 * 60 * 1000;

test('a relay closes recordings cut by a crash, expires old ones, and serves both front ends alike', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  mkdirSync(dataDir, { mode: 0o700 });
  // Before the relay runs: one recording that ended 3 h ago, and one still open, as a crash leaves it.
  const store = openDataDir(dataDir);
  const meta = { device: 'cam', user: 'alice', login: 'pi', width: 80, height: 24 };
  const old = await startRecording({ store, dataDir, clock: { ...systemClock, now: () => Date.now() - 4 * HOUR } }, { ...meta, sessionId: 'old' });
  const oldRow = await old.end();
  const open = await startRecording({ store, dataDir, clock: systemClock }, { ...meta, sessionId: 'cut' });
  open.recorder.output(Buffer.from('written before the crash\r\n'));
  await open.recorder.flush();
  const openFile = join(dataDir, store.getRecording(open.id)!.path);
  store.close();

  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`, '--recording-retention', '2h']);
  const relayKeyLine = readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  const asAdmin = sshSetup(dir, { port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine });
  const local = (words: string[]) => run(process.execPath, [FERRY, ...words, '--data-dir', dataDir], { timeoutMs: 30_000 });

  const listed = await relayCommand(asAdmin, ['recordings', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as { id: string; sha256: string; bytes: number; endedAt: string | null }[];
  assert.deepEqual(rows.map((r) => r.id), [open.id], 'the expired one is gone, the cut one is listed');
  const bytes = readFileSync(openFile);
  assert.equal(rows[0]!.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.equal(rows[0]!.bytes, bytes.length);
  assert.notEqual(rows[0]!.endedAt, null, 'closed at start');
  assert.equal(existsSync(join(dataDir, oldRow.path)), false, 'the expired file is removed');

  const catRemote = await relayCommand(asAdmin, ['recording', 'cat', open.id]);
  assert.equal(catRemote.code, 0, catRemote.stderr);
  assert.equal(catRemote.stdout, bytes.toString('utf8'));
  assert.deepEqual(parseCast(catRemote.stdout).events.map((e) => e[2]), ['written before the crash\r\n']);
  for (const words of [['recordings'], ['recordings', '--json'], ['recording', 'cat', open.id]]) {
    const l = await local(words);
    const r = await relayCommand(asAdmin, words);
    assert.deepEqual({ code: l.code, stdout: l.stdout, stderr: l.stderr }, { code: r.code, stdout: r.stdout, stderr: r.stderr }, words.join(' '));
  }

  const audit = JSON.parse((await local(['audit', '--action', 'recording.*', '--json'])).stdout) as { action: string; detail: Record<string, unknown> }[];
  assert.deepEqual(audit.map((a) => [a.action, a.detail.recording, a.detail.crashed ?? false]), [
    ['recording.end', old.id, false], ['recording.end', open.id, true], ['recording.expire', old.id, false],
  ]);
  assert.equal(audit[2]!.detail.sha256, oldRow.sha256, 'the expire row holds the sha256 of what was removed');
  assert.match((await local(['audit', 'verify'])).stdout, /^audit log intact/);
});
