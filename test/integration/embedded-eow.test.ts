// `ssh device CMD | head` on the agent's built-in SSH server, with the real OpenSSH client
// through the relay, compared with a real sshd behind the same relay. When its stdout closes,
// OpenSSH sends `eow@openssh.com` ("end of write") on the session channel and drops whatever
// data still arrives. sshd then closes the command's output pipes, so the command dies of
// SIGPIPE at its next write and the session ends with exit-signal PIPE. The built-in server
// must do the same: `yes | head -n 1` ends and leaves no `yes` on the device, and
// `cat /dev/zero | head -c 10` moves a bounded number of bytes (measured by the client's own
// byte count), not everything the command can produce. OpenSSH sends eow only to servers
// whose version string matches "OpenSSH*", which the built-in server's does. With a PTY,
// neither server can use SIGPIPE: both stop reading the terminal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { eventually, fileCleanup, run } from '../helpers/env.ts';
import { notRoot, processesMatching, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import type { SshSetup } from '../helpers/ssh-client.ts';

const DEV = 'eow-dev';
/** A device whose target is OpenSSH's sshd (the fixture's throwaway one): the reference behaviour. */
const REF = 'eow-ref';
const suite = fileCleanup(after);
let e: EmbeddedFixture;
/** How long a pipeline may take before it counts as hanging (it ends in about a second when right). */
const PIPELINE_TIMEOUT_MS = 20_000;
/**
 * Most bytes the client may receive for `cat /dev/zero | head -c 10`. Bounded by the SSH
 * window (OpenSSH opens sessions with 2 MiB) plus what was in flight: sshd moves about 2 MB.
 */
const MAX_BYTES_AFTER_EOW = 8 * 1024 * 1024;

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  await e.f.device(REF);
});

interface Pipeline { sshExit: number; head: string; received: number; stderr: string; timedOut: boolean }

/**
 * Runs `ssh -v [ttFlags] HOST 'COMMAND' | head ARGS` in bash, with ssh's stdin at /dev/null,
 * and returns ssh's exit code, what head printed, and the bytes ssh says it received.
 */
async function pipeline(s: SshSetup, host: string, command: string, headArgs: string, ttFlags = ''): Promise<Pipeline> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const script = `ssh -F ${q(s.config)} -v ${ttFlags} ${host} ${q(command)} </dev/null | head ${headArgs}; echo "ssh-exit=\${PIPESTATUS[0]}" >&2`;
  const r = await run('bash', ['-c', script], { timeoutMs: PIPELINE_TIMEOUT_MS });
  // OpenSSH's last words at -v: "Transferred: sent N, received M bytes, in S seconds".
  const m = /Transferred: sent [\d,]+, received ([\d,]+) bytes/.exec(r.stderr);
  return {
    sshExit: Number(/ssh-exit=(\d+)/.exec(r.stderr)?.[1] ?? NaN),
    head: r.stdout,
    received: m ? Number(m[1]!.replace(/,/g, '')) : NaN,
    stderr: r.stderr.split('\n').filter((l) => !/^debug1: (?!client_input_channel_req|Transferred|Exit)/.test(l)).slice(-20).join('\n'),
    timedOut: r.signal !== null,
  };
}

/** A marker no other process on this machine has in its command line. */
const marker = (what: string) => `ferry-eow-${what}-${process.pid}`;

test('reference: sshd ends `yes | head -n 1` with exit-signal when the client closes its reader', { timeout: 60_000 }, async () => {
  const m = marker('ref');
  const r = await pipeline(e.f.admin, REF, `yes ${m}`, '-n 1');
  assert.equal(r.timedOut, false, `the pipeline ended by itself: ${r.stderr}`);
  assert.equal(r.head, `${m}\n`);
  assert.equal(r.sshExit, 255, 'OpenSSH exits 255 on exit-signal');
  assert.match(r.stderr, /rtype exit-signal/);
  assert.deepEqual(processesMatching(`^yes ${m}$`), []);
});

test('OpenSSH takes the built-in server for OpenSSH-compatible (so it sends eow), with no bug flags', { timeout: 60_000 }, async () => {
  // OpenSSH sends eow@openssh.com only to servers matching its compat pattern "OpenSSH*";
  // 0x04000000 is SSH_NEW_OPENSSH alone, none of the workarounds for old versions' bugs.
  const r = await run('ssh', ['-F', e.admin.config, '-v', DEV, 'true'], { timeoutMs: PIPELINE_TIMEOUT_MS });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /compat_banner: match: OpenSSH-compatible ferry-agent_\S+ pat OpenSSH\* compat 0x04000000$/m);
});

test('`ssh device yes | head -n 1` ends: yes dies of SIGPIPE and the session ends with exit-signal', { timeout: 60_000 }, async (t) => {
  const m = marker('yes');
  t.after(() => { spawnSync('pkill', ['-KILL', '-f', `^yes ${m}$`]); });
  const r = await pipeline(e.admin, DEV, `yes ${m}`, '-n 1');
  assert.equal(r.timedOut, false, `the pipeline ended by itself within ${PIPELINE_TIMEOUT_MS} ms (it hangs when eow@openssh.com is ignored): ${r.stderr}`);
  assert.equal(r.head, `${m}\n`);
  assert.equal(r.sshExit, 255, `OpenSSH exits 255 on exit-signal, as with sshd: ${r.stderr}`);
  assert.match(r.stderr, /rtype exit-signal/);
  assert.doesNotMatch(r.stderr, /rtype exit-status/);
  await eventually(() => processesMatching(`^yes ${m}$`).length === 0, 5_000, `no 'yes ${m}' left on the device`);
});

test('`ssh device cat /dev/zero | head -c 10` moves a bounded number of bytes, as with sshd', { timeout: 60_000 }, async (t) => {
  const ref = await pipeline(e.f.admin, REF, 'cat /dev/zero', '-c 10');
  assert.equal(ref.timedOut, false, ref.stderr);
  assert.ok(ref.received < MAX_BYTES_AFTER_EOW, `reference: sshd sent ${ref.received} bytes`);
  const r = await pipeline(e.admin, DEV, 'cat /dev/zero', '-c 10');
  assert.equal(r.timedOut, false, `the pipeline ended by itself within ${PIPELINE_TIMEOUT_MS} ms: ${r.stderr}`);
  assert.equal(r.head, '\0'.repeat(10));
  assert.ok(Number.isFinite(r.received), `ssh -v reported its byte count: ${r.stderr}`);
  assert.ok(r.received < MAX_BYTES_AFTER_EOW, `the device sent ${r.received} bytes after the client closed its reader (sshd: ${ref.received}); at most ${MAX_BYTES_AFTER_EOW}`);
  assert.equal(r.sshExit, 255, r.stderr);
  t.diagnostic(`bytes received by the client: sshd ${ref.received}, built-in server ${r.received}`);
});

test('after eow, stderr is still read but no longer sent, as with sshd (OpenSSH shows neither)', { timeout: 60_000 }, async () => {
  // The shell writes to stderr after yes has died: the write succeeds (the shell exits 0, so
  // ssh does) and the message is not shown. OpenSSH's client drops stderr after eow itself.
  for (const [s, host] of [[e.f.admin, REF], [e.admin, DEV]] as const) {
    const m = marker(`stderr-${host}`);
    const r = await pipeline(s, host, `yes ${m}; echo "after eow: $?" >&2`, '-n 1');
    assert.equal(r.timedOut, false, `${host}: ${r.stderr}`);
    assert.equal(r.head, `${m}\n`, host);
    assert.doesNotMatch(r.stderr, /after eow/, host);
    assert.equal(r.sshExit, 0, `${host}: the shell's write to stderr did not fail: ${r.stderr}`);
  }
});

/** Bytes a process has written so far (/proc/PID/io, readable by root), or null when it is gone. */
function bytesWritten(pid: number): number | null {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return null;
  }
}

test('with a PTY (ssh -tt), eow stops the output: the command blocks on its terminal, as with sshd', { skip: notRoot('reads /proc/PID/io of the command'), timeout: 60_000 }, async (t) => {
  // A terminal has no reader to lose, so neither sshd nor the built-in server can end the
  // command with SIGPIPE: both stop reading the terminal, so the command blocks at its next
  // write once the terminal's buffer is full, and nothing more crosses the relay. It ends
  // when the operator presses Ctrl-C or leaves (here: the ssh is killed).
  for (const [s, host] of [[e.f.admin, REF], [e.admin, DEV]] as const) {
    const m = marker(`pty-${host}`);
    const pattern = `^yes ${m}$`;
    t.after(() => { spawnSync('pkill', ['-KILL', '-f', pattern]); });
    const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const bash = spawn('bash', ['-c', `ssh -F ${q(s.config)} -tt ${host} ${q(`yes ${m}`)} </dev/null | head -n 1`], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const stop = () => { try { process.kill(-bash.pid!, 'SIGKILL'); } catch { /* gone */ } };
    t.after(stop);
    let head = '';
    bash.stdout.on('data', (d: Buffer) => { head += d.toString(); });
    await eventually(() => head.includes(m), 15_000, `${host}: the first line through head`);
    const pid = Number((await eventually(() => processesMatching(pattern)[0], 10_000, `${host}: yes on the device`)).split(' ')[0]);
    // Stopped: two readings a quarter of a second apart are the same (yes writes hundreds of MB a second otherwise).
    let last = -1;
    await eventually(() => {
      const now = bytesWritten(pid);
      const same = now !== null && now === last;
      last = now ?? -1;
      return same;
    }, 10_000, `${host}: yes to stop writing`, 250);
    assert.ok(last < 64 * 1024 * 1024, `${host}: yes wrote ${last} bytes before it blocked`);
    stop();
    await eventually(() => processesMatching(pattern).length === 0, 10_000, `${host}: yes to end when the client leaves`);
  }
});
