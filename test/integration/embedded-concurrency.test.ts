// Many sessions on the agent's built-in SSH server at once, with the real OpenSSH client
// through the relay: ControlMaster/ControlPersist multiplexing (several commands over one
// master connection, `ssh -O check`, `ssh -O exit`), and 20 parallel connections each
// getting its own output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { eventually, fileCleanup, run, tempDir } from '../helpers/env.ts';
import { startEmbedded, withControlMaster, type EmbeddedFixture } from '../helpers/embedded.ts';
import { ssh } from '../helpers/ssh-client.ts';

const DEV = 'mux-dev';
const suite = fileCleanup(after);
let e: EmbeddedFixture;

before(async () => {
  // Twenty sessions at once to one device: more than the relay's default cap of 16 per device.
  e = await startEmbedded(suite, { [DEV]: null }, { maxSessionsPerDevice: 32 });
});

/** How many channels the relay has opened to the device so far (one per SSH connection to it). */
const reaches = () => e.f.relay.store.listAudit({ device: DEV, limit: 10_000 }).filter((a) => a.action === 'reach.start' && a.target === DEV).length;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

test('ControlMaster auto + ControlPersist: commands share one master connection; -O check and -O exit', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'ferry-mux-');
  const cm = withControlMaster(e.admin, dir, 'mux');
  let masterPid: number | null = null;
  t.after(async () => {
    await run('ssh', ['-F', cm.config, '-O', 'exit', DEV], { timeoutMs: 5_000 });
    if (masterPid !== null && alive(masterPid)) process.kill(masterPid, 'SIGTERM');
  });
  const before = reaches();

  const first = await ssh(cm, [DEV, 'echo "first $$"']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^first \d+\n$/);
  // ControlPersist: the master stays in the background after the first command.
  assert.ok(existsSync(cm.controlPath), 'the control socket is there');
  const check = await ssh(cm, ['-O', 'check', DEV]);
  assert.equal(check.code, 0, check.stderr);
  masterPid = Number(/Master running \(pid=(\d+)\)/.exec(check.stderr)?.[1]);
  assert.ok(masterPid > 0 && alive(masterPid), check.stderr);

  const second = await ssh(cm, ['-v', DEV, 'echo second; exit 5']);
  assert.equal(second.code, 5, 'the exit code comes back through the master');
  assert.equal(second.stdout, 'second\n');
  assert.match(second.stderr, /mux_client_request_session: master session id/, 'the second command went through the master');
  // Two sessions at once on the one master, with separate output and exit codes.
  const [x, y] = await Promise.all([ssh(cm, [DEV, 'echo x; exit 1']), ssh(cm, [DEV, 'echo y >&2; exit 2'])]);
  assert.deepEqual([x.code, x.stdout, y.code, y.stderr], [1, 'x\n', 2, 'y\n']);
  assert.equal(reaches() - before, 1, 'the relay opened one channel to the device for all of them');

  const exit = await ssh(cm, ['-O', 'exit', DEV]);
  assert.equal(exit.code, 0, exit.stderr);
  assert.match(exit.stderr, /Exit request sent/);
  await eventually(() => !existsSync(cm.controlPath) && !alive(masterPid!), 10_000, 'the master to end and remove its socket');
  const after = await ssh(cm, ['-O', 'check', DEV]);
  assert.notEqual(after.code, 0, 'no master any more');

  // And a new command starts a new master (a new connection).
  const third = await ssh(cm, [DEV, 'echo third']);
  assert.equal(third.stdout, 'third\n', third.stderr);
  assert.equal(reaches() - before, 2);
});

test('20 parallel sessions each get their own, complete output and exit code', { timeout: 120_000 }, async () => {
  const n = 20;
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => ssh(e.admin, [DEV, `echo "session ${i}"; head -c ${(i + 1) * 10_000} /dev/zero | tr '\\0' ${String.fromCharCode(97 + i)}; echo; echo "err ${i}" >&2; exit ${i}`], { timeoutMs: 90_000 })));
  runs.forEach((r, i) => {
    const letter = String.fromCharCode(97 + i);
    assert.equal(r.code, i, `session ${i}: ${r.stderr}`);
    const expected = `session ${i}\n${letter.repeat((i + 1) * 10_000)}\n`;
    assert.ok(r.stdout === expected, `session ${i} got its own output: ${r.stdout.length} bytes (want ${expected.length}), starting ${JSON.stringify(r.stdout.slice(0, 40))}`);
    assert.equal(r.stderr, `err ${i}\n`);
  });
});
