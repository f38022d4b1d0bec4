// The agent's built-in SSH server with the real OpenSSH client through the relay: an
// interactive shell in a real terminal (tmux: prompt, TERM, stty size, window-change,
// Ctrl-C, UTF-8 both ways, exit code), `ssh -tt` with a command, exec exit codes and
// exit signals (compared with a real sshd behind the same relay), stdout/stderr
// separation, binary-safe stdin/stdout, stdin EOF, env requests, and the process group
// ended when the channel closes. The agent runs in this process, so these sessions run as
// the user running the tests (root in CI); embedded-users.test.ts covers other users.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { eventually, fileCleanup, missing, run } from '../helpers/env.ts';
import { LOGIN, processesMatching, protocolExit, runBinary, spawnSsh, startEmbedded, startTmux, type EmbeddedFixture } from '../helpers/embedded.ts';
import { ssh } from '../helpers/ssh-client.ts';

const DEV = 'shell-dev';
/** A device whose target is OpenSSH's sshd (the fixture's throwaway one): the reference behaviour. */
const REF = 'ref-sshd';
const suite = fileCleanup(after);
let e: EmbeddedFixture;
const noTmux = missing('tmux', 'tmux');

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  await e.f.device(REF);
});

/** The prompt of a login shell on Debian: `user@host:~#` (or `$`). */
const PROMPT = /^[\w.-]+@[\w.-]+:~[#$] ?$/m;

/** Starts `ssh DEV` (a terminal is there, so OpenSSH asks for a PTY) in a tmux window and waits for the prompt. */
async function shell(t: { after(fn: () => unknown): void }, cols = 100, rows = 30) {
  const term = await startTmux(t, e.f.dir, ['ssh', '-F', e.admin.config, DEV], cols, rows);
  await term.waitFor(PROMPT, 'the shell prompt', 15_000);
  return term;
}

/** Types `command` after a unique marker and returns the output lines between the marker and the next prompt. */
let marks = 0;
async function typed(term: Awaited<ReturnType<typeof shell>>, command: string): Promise<string> {
  const mark = `mark${++marks}`;
  await term.type(`echo ${mark}; ${command}; echo end-${mark}\r`);
  const m = await term.waitFor(new RegExp(`^${mark}\\n([\\s\\S]*?)^end-${mark}$`, 'm'), `the output of '${command}'`);
  return m[1]!.trimEnd();
}

test('interactive shell: prompt, TERM, stty size matches the window, and resizing the window changes it', { skip: noTmux, timeout: 60_000 }, async (t) => {
  const term = await shell(t, 100, 30);
  assert.match(await typed(term, 'echo "term=$TERM"'), /^term=(tmux|screen)(-256color)?$/, 'TERM is the terminal type the client sent');
  assert.equal(await typed(term, 'stty size'), '30 100');
  assert.match(await typed(term, 'tty'), /^\/dev\/pts\/\d+$/);
  // window-change: OpenSSH sends it on SIGWINCH, which tmux raises when the window is resized.
  await term.resize(120, 40);
  await eventually(async () => (await typed(term, 'stty size')) === '40 120', 10_000, 'stty size to show the new window size');
  await term.resize(70, 20);
  await eventually(async () => (await typed(term, 'stty size')) === '20 70', 10_000, 'stty size to follow a shrink');
});

test('interactive shell: Ctrl-C interrupts a foreground sleep 100 and the shell lives on', { skip: noTmux, timeout: 60_000 }, async (t) => {
  const term = await shell(t);
  t.after(() => { spawnSync('pkill', ['-f', '^sleep 100$']); });
  await term.type('sleep 100\r');
  await eventually(() => processesMatching('^sleep 100$').length > 0, 10_000, 'sleep 100 to be running');
  await term.key('C-c');
  await eventually(() => processesMatching('^sleep 100$').length === 0, 10_000, 'sleep 100 to be interrupted');
  await term.waitFor(/\^C\n[\w.-]+@[\w.-]+:~[#$] ?$/m, 'the prompt after ^C');
  // 130 = 128 + SIGINT: the sleep was killed by the terminal's interrupt, not by the server.
  await term.type('echo "status=$?"\r');
  assert.equal((await term.waitFor(/^status=(\d+)$/m, 'the status of the interrupted sleep'))[1], '130');
});

test('interactive shell: UTF-8 output and input survive the PTY byte for byte', { skip: noTmux, timeout: 60_000 }, async (t) => {
  const term = await shell(t);
  // Typed as UTF-8 and printed back.
  assert.equal(await typed(term, "printf 'é€😀\\n'"), 'é€😀');
  // Produced from octal escapes, so the bytes on the way back are the only UTF-8 on the line.
  assert.equal(await typed(term, "printf 'raw:\\303\\251\\342\\202\\254\\360\\237\\230\\200\\n'"), 'raw:é€😀');
  // Typed UTF-8 reaches the program as the same bytes.
  assert.equal(await typed(term, "printf %s 'é€😀' | od -An -tx1 | tr -s ' ' | sed 's/^ //'"), 'c3 a9 e2 82 ac f0 9f 98 80');
});

test('interactive shell: `exit 4` ends ssh with code 4; no MOTD and no "Last login" (differs from sshd)', { skip: noTmux, timeout: 60_000 }, async (t) => {
  const term = await shell(t);
  const before = await term.screen();
  // OpenSSH's sshd shows /etc/motd (PrintMotd or pam_motd) and "Last login: …" (PrintLastLog)
  // before the prompt. ferry's built-in server does neither: it starts the login shell only.
  assert.doesNotMatch(before, /Last login/);
  const motd = existsSync('/etc/motd') ? readFileSync('/etc/motd', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 10) : [];
  for (const line of motd) assert.ok(!before.includes(line), `the MOTD line '${line}' is not shown`);
  await term.type('exit 4\r');
  assert.equal(await term.exitCode(), 4);
});

test('ssh -tt with a command: a PTY, the client TERM, CRLF output, and the exit code', async () => {
  const r = await run('ssh', ['-F', e.admin.config, '-tt', DEV, 'tty; echo "term=$TERM"; stty size; echo err >&2; exit 3'], { env: { ...process.env, TERM: 'vt100' } });
  assert.equal(r.code, 3, r.stderr);
  const lines = r.stdout.split('\r\n');
  assert.match(lines[0]!, /^\/dev\/pts\/\d+$/);
  assert.equal(lines[1], 'term=vt100');
  // Differs from sshd: with no local terminal `ssh -tt` asks for a 0×0 PTY; sshd's PTY then
  // says "0 0", ferry's built-in server uses 80×24 instead.
  assert.equal(lines[2], '24 80');
  // With a PTY, stderr goes to the terminal too, as with sshd.
  assert.equal(lines[3], 'err');
  assert.equal(r.stderr, '');
});

test('exec without a PTY returns the exit codes 0, 1, 3 and 255', async () => {
  for (const code of [0, 1, 3, 255]) {
    const r = await ssh(e.admin, [DEV, `echo "code-${code}"; exit ${code}`]);
    assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code, stdout: `code-${code}\n`, stderr: '' });
  }
});

test('a command killed by a signal is reported with exit-signal, as sshd does (OpenSSH exits 255)', { timeout: 90_000 }, async () => {
  // What the real sshd does, checked here rather than assumed: OpenSSH's client receives
  // exit-signal, prints nothing at the default log level, and exits 255.
  for (const tt of [[], ['-tt']]) {
    const ref = await ssh(e.f.admin, ['-v', ...tt, REF, 'kill -TERM $$']);
    assert.equal(ref.code, 255);
    assert.match(ref.stderr, /rtype exit-signal/, 'reference: sshd sends exit-signal');
    const r = await ssh(e.admin, ['-v', ...tt, DEV, 'kill -TERM $$']);
    assert.equal(r.code, 255, `${tt.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /rtype exit-signal/, `${tt.join(' ')}: exit-signal is sent`);
    assert.doesNotMatch(r.stderr, /rtype exit-status/, `${tt.join(' ')}: and no exit-status`);
    assert.equal(r.stdout, '');
  }
});

test('the exit-signal carries the signal name (TERM, KILL), with and without a PTY', async () => {
  // OpenSSH does not print the name, so ssh2's client reads it (it adds the SIG prefix itself).
  for (const pty of [false, true]) {
    assert.deepEqual(await protocolExit(e, DEV, LOGIN, 'kill -TERM $$', { pty }), { code: null, signal: 'SIGTERM' }, `pty=${pty}`);
    assert.deepEqual(await protocolExit(e, DEV, LOGIN, 'kill -KILL $$', { pty }), { code: null, signal: 'SIGKILL' }, `pty=${pty}`);
    assert.deepEqual(await protocolExit(e, DEV, LOGIN, 'exit 7', { pty }), { code: 7, signal: null }, `pty=${pty}`);
  }
});

test('stdout and stderr stay separate and complete, also when a command ends with a lot of stderr', { timeout: 120_000 }, async () => {
  const small = await ssh(e.admin, [DEV, 'echo out; echo err >&2; echo more']);
  assert.deepEqual([small.code, small.stdout, small.stderr], [0, 'out\nmore\n', 'err\n']);
  // Summaries, not the megabyte strings, so that a failure stays readable.
  const shape = (s: string) => s.replace(/(.)\1{99,}/g, (run, c: string) => `<${run.length}×${c}>`);
  // 3 MB on stdout, then 2 MB on stderr as the last thing the command does; five at once,
  // since losing the end of stderr is a race (one run in two here when it happens).
  const command = "echo out; echo err >&2; head -c 3000000 /dev/zero | tr '\\0' o; head -c 2000000 /dev/zero | tr '\\0' e >&2";
  const runs = await Promise.all(Array.from({ length: 5 }, () => ssh(e.admin, [DEV, command])));
  const got = runs.map((r) => `exit ${r.code}, stdout ${JSON.stringify(shape(r.stdout))}, stderr ${JSON.stringify(shape(r.stderr))}`);
  assert.deepEqual(got, runs.map(() => 'exit 0, stdout "out\\n<3000000×o>", stderr "err\\n<2000000×e>"'));
});

test('stdin to stdout is binary-safe: 5 MiB of random bytes through cat', { timeout: 60_000 }, async () => {
  const data = randomBytes(5 * 1024 * 1024);
  const r = await runBinary('ssh', ['-F', e.admin.config, DEV, 'cat'], data);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, data.length);
  assert.equal(createHash('sha256').update(r.stdout).digest('hex'), createHash('sha256').update(data).digest('hex'));
});

test('stdin EOF is passed on: wc -c counts and ends, cat > /dev/null returns', async () => {
  const r = await ssh(e.admin, [DEV, 'wc -c'], { input: randomBytes(123_457), timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '123457');
  const empty = await ssh(e.admin, [DEV, 'cat >/dev/null; echo eof-seen'], { timeoutMs: 20_000 });
  assert.equal(empty.stdout, 'eof-seen\n', 'an empty stdin ends at once');
});

test('env requests: LANG and LC_* sent with SendEnv arrive; FOO and LD_PRELOAD do not', async () => {
  const r = await run('ssh', ['-F', e.admin.config, '-o', 'SendEnv=LANG LC_* FOO LD_PRELOAD', DEV, 'echo "$LANG|$LC_PAPER|$LC_FERRY_TEST|${FOO-unset}|${LD_PRELOAD-unset}"'], {
    env: { ...process.env, LANG: 'C.UTF-8', LC_PAPER: 'POSIX', LC_FERRY_TEST: 'sent-123', FOO: 'bar', LD_PRELOAD: '/nonexistent/ferry.so' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'C.UTF-8|POSIX|sent-123|unset|unset\n');
});

for (const tt of [false, true]) {
  test(`closing the channel ends the whole process group, background jobs too (${tt ? 'PTY' : 'pipes'})`, { timeout: 60_000 }, async (t) => {
    // Differs from sshd without a PTY: sshd closes the pipes and leaves both sleeps running
    // (checked against the reference device); ferry ends the process group, as its design
    // says. With a PTY both end them (sshd through the terminal's hangup).
    // `sleep 1000 & sleep 1000`, with an argument no other process uses (GNU sleep takes fractions).
    const arg = `1000.${process.pid}${tt ? 1 : 0}`;
    const pattern = `^sleep ${arg.replace('.', '\\.')}$`;
    t.after(() => { spawnSync('pkill', ['-KILL', '-f', pattern]); });
    const client = spawnSsh(t, e.admin, [...(tt ? ['-tt'] : []), DEV, `sleep ${arg} & sleep ${arg}`]);
    await eventually(() => processesMatching(pattern).length === 2, 15_000, 'both sleeps to run on the device');
    // Closing ssh closes the connection through the relay, and so the channel on the device.
    await client.stop();
    await eventually(() => processesMatching(pattern).length === 0, 10_000, `no 'sleep ${arg}' left after the channel closed (left: ${processesMatching(pattern).join(', ')})`);
    // No zombie: the agent (this process) reaps what it started.
    await eventually(() => !/^\s*\d+\s+Z/m.test(spawnSync('ps', ['-o', 'pid=,stat=', '--ppid', String(process.pid)], { encoding: 'utf8' }).stdout), 10_000, 'no zombie children of the agent');
  });
}
