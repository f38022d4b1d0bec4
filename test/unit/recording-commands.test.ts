// Covers the `recordings` and `recording cat` commands in src/relay/commands.ts over the
// recordings operations (src/relay/operations/recordings.ts): the table, --json, filters,
// the .cast printed byte for byte, unknown ids, and the recording.read permission.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, test } from 'node:test';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { runCommand, type CommandContext } from '../../src/relay/commands.ts';
import type { Principal } from '../../src/relay/principal.ts';
import { startRecording } from '../../src/relay/recordings.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { RecordingRecord, Store } from '../../src/relay/store.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const RELAY = { publicAddress: 'relay.example.com:2222', fingerprint: 'SHA256:x' };
const root = mkdtempSync(join(tmpdir(), 'ferry-recording-commands-'));
after(() => rmSync(root, { recursive: true, force: true }));
const adminKey = generateKeyPair('admin').publicKey;
const opKey = generateKeyPair('op').publicKey;
const ADMIN: Principal = { kind: 'ssh', user: 'admin', keyFingerprint: adminKey.fingerprint, remoteAddress: '192.0.2.9' };
const OPERATOR: Principal = { kind: 'ssh', user: 'olga', keyFingerprint: opKey.fingerprint, remoteAddress: '192.0.2.9' };

let n = 0;
let dataDir: string;
let store: Store;
let clock: FakeClock;
let recs: RecordingRecord[];
beforeEach(async () => {
  dataDir = join(root, `d${++n}`);
  mkdirSync(dataDir);
  store = openSqliteStore(join(dataDir, 'ferry.db'));
  store.addUser('admin', ['admin'], [{ fingerprint: adminKey.fingerprint, line: adminKey.line }], 0);
  store.addUser('olga', ['operator'], [{ fingerprint: opKey.fingerprint, line: opKey.line }], 0);
  clock = new FakeClock();
  clock.advance(Date.UTC(2026, 0, 31, 12, 0, 0) - clock.now());
  recs = [];
  for (const [device, user, text] of [['cam', 'alice', 'é cam\r\n'], ['door', 'bob', 'door\r\n']] as const) {
    const live = await startRecording({ store, dataDir, clock }, { sessionId: `s-${device}`, device, user, login: 'pi', width: 80, height: 24 });
    live.recorder.output(Buffer.from(text));
    clock.advance(1500);
    recs.push(await live.end());
  }
});
afterEach(() => store.close());

function run(line: string, principal: Principal = ADMIN) {
  const ctx: CommandContext = { store, now: clock.now(), relay: RELAY, principal, dataDir };
  const r = runCommand(ctx, line.split(' '));
  return { ...r, all: r.stdout + [...(r.more ?? [])].join('') };
}

test('recordings: a table newest first, filters, and --json', () => {
  const [cam, door] = recs as [RecordingRecord, RecordingRecord];
  const t = run('recordings');
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID\s+STARTED\s+LENGTH\s+USER\s+DEVICE\s+LOGIN\s+BYTES\s+SHA256$/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)), [
    [door.id, new Date(door.startedAt).toISOString(), '1.5s', 'bob', 'door', 'pi', String(door.bytes), door.sha256],
    [cam.id, new Date(cam.startedAt).toISOString(), '1.5s', 'alice', 'cam', 'pi', String(cam.bytes), cam.sha256],
  ]);
  const j = JSON.parse(run('recordings --device cam --json').stdout) as Record<string, unknown>[];
  assert.deepEqual(j, [{
    id: cam.id, sessionId: 's-cam', device: 'cam', user: 'alice', login: 'pi', path: cam.path, bytes: cam.bytes, sha256: cam.sha256,
    startedAt: new Date(cam.startedAt).toISOString(), endedAt: new Date(cam.endedAt!).toISOString(), durationMs: 1500,
  }]);
  assert.deepEqual((JSON.parse(run('recordings --user bob --json').stdout) as { id: string }[]).map((r) => r.id), [door.id]);
  const none = run('recordings --user carol');
  assert.deepEqual([none.code, none.stdout, none.stderr], [0, '', 'no recording matches\n']);
  assert.equal(run('recordings --bogus').code, 2);
});

test('recording cat ID prints the .cast byte for byte; an unknown id is refused with what to run', () => {
  const cam = recs[0]!;
  const r = run(`recording cat ${cam.id}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.all, readFileSync(join(dataDir, cam.path), 'utf8'));
  assert.match(r.all, /"é cam\\r\\n"/);
  const missing = run('recording cat 0123456789abcdef');
  assert.deepEqual([missing.code, missing.stderr], [1, "ferry: there is no recording '0123456789abcdef'; 'recordings' lists them\n"]);
  assert.equal(run('recording cat ../../etc/passwd').code, 1, 'an id that is not one is simply not found');
  assert.equal(run('recording cat').code, 2);
  assert.equal(run('recording play x').code, 2);
});

test('an operator without recording.read sees neither the list nor a file, and the refusal is audited', () => {
  for (const line of ['recordings', `recording cat ${recs[0]!.id}`]) {
    const r = run(line, OPERATOR);
    assert.equal(r.code, 1, line);
    assert.match(r.stderr, /recording\.read/, line);
    assert.equal(r.all, '', line);
  }
  const refused = store.listAudit({ action: 'action.refused', limit: 10 });
  assert.deepEqual(refused.map((a) => [a.actor, a.detail.action, a.target]), [['olga', 'recording.read', null], ['olga', 'recording.read', recs[0]!.id]]);
});

test('help lists the recording commands', () => {
  assert.match(run('help').stdout, /recordings \[--device NAME\] \[--user NAME\] \[--json\][\s\S]*recording cat ID/);
});
