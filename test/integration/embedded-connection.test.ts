// How a connection to the agent's built-in SSH server ends, and what it may still open, with
// the real OpenSSH client (or ssh2's) through the relay, compared with a real sshd behind the
// same relay.
//
// The client's end of the stream ending: a probe such as `ssh -W device:22 relay </dev/null`
// (what a ProxyJump health check or an `nc -z` style test does) half-closes the tunnelled
// stream before sending anything. sshd ends the connection as soon as its input ends, at
// whatever stage: before the handshake, during it, or after login. The built-in server must
// do the same, and not keep the stream open until its login grace time or, before the
// client's identification and after login, for ever.
//
// no-more-sessions@openssh.com: OpenSSH sends it on every connection that is not a
// ControlMaster, after its one session; from then on the server refuses new session channels,
// so that a hijacked connection cannot be used to start more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { eventually, fileCleanup, run } from '../helpers/env.ts';
import { LOGIN, processesMatching, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import type { SshSetup } from '../helpers/ssh-client.ts';

const DEV = 'eof-dev';
/** A device whose target is OpenSSH's sshd (the fixture's throwaway one): the reference behaviour. */
const REF = 'eof-ref';
/**
 * How long a probe may take before it counts as hanging. sshd answers in milliseconds; the
 * built-in server's login grace time (20 s) is what a hang runs into, so this is well below it.
 */
const PROBE_TIMEOUT_MS = 5_000;
const suite = fileCleanup(after);
let e: EmbeddedFixture;

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  await e.f.device(REF);
});

interface Probe { code: number | null; stdout: string; stderr: string; ms: number; timedOut: boolean }

/**
 * Runs `ssh -W HOST:22 relay` with `input` on its stdin (stdin at /dev/null when there is
 * none), killing it after PROBE_TIMEOUT_MS; returns how it ended and how long it took.
 */
function probe(s: SshSetup, host: string, input?: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('ssh', ['-F', s.config, '-W', `${host}:22`, s.relay], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, PROBE_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString('latin1'); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Math.round(performance.now() - started), timedOut }); });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Asserts that a probe of the built-in server ended by itself, as the one of sshd did. */
function assertLikeSshd(ref: Probe, dev: Probe): void {
  assert.equal(ref.timedOut, false, `reference: sshd ended the probe: ${ref.stderr}`);
  assert.equal(dev.timedOut, false, `the built-in server ended the probe within ${PROBE_TIMEOUT_MS} ms, as sshd did in ${ref.ms} ms: ${dev.stderr}`);
  assert.match(ref.stdout, /^SSH-2\.0-OpenSSH/, 'reference: sshd sent its identification');
  assert.match(dev.stdout, /^SSH-2\.0-OpenSSH-compatible ferry-agent_/, 'the built-in server sent its identification');
  assert.equal(dev.code, ref.code, `ssh exits as with sshd: ${dev.stderr}`);
}

test('`ssh -W device:22 relay </dev/null` ends at once, as with sshd', { timeout: 30_000 }, async (t) => {
  const ref = await probe(e.f.admin, REF);
  const dev = await probe(e.admin, DEV);
  t.diagnostic(`probe time: sshd ${ref.ms} ms, built-in server ${dev.ms} ms`);
  assertLikeSshd(ref, dev);
});

test('a client that sends its identification and then ends its input is let go, as by sshd', { timeout: 30_000 }, async (t) => {
  const ref = await probe(e.f.admin, REF, 'SSH-2.0-ferry_probe\r\n');
  const dev = await probe(e.admin, DEV, 'SSH-2.0-ferry_probe\r\n');
  t.diagnostic(`probe time: sshd ${ref.ms} ms, built-in server ${dev.ms} ms`);
  assertLikeSshd(ref, dev);
});

/** An SSH connection to `device` logged in with ssh2's client through the relay (as admin), and the tunnelled stream under it. */
interface Login { inner: InstanceType<typeof ssh2.Client>; stream: Duplex & { eof(): void }; end(): void }

async function login(device: string): Promise<Login> {
  const privateKey = readFileSync(e.f.adminKey.path);
  const pinned = (line: string) => (key: Buffer) => Buffer.from(line.split(' ')[1]!, 'base64').equals(key);
  const relay = new ssh2.Client();
  const inner = new ssh2.Client();
  const end = () => { inner.end(); relay.end(); };
  try {
    await new Promise<void>((resolve, reject) => {
      relay.once('ready', resolve).once('error', reject);
      relay.connect({ host: '127.0.0.1', port: e.f.relay.sshAddress.port, username: 'admin', privateKey, hostVerifier: pinned(e.f.relay.hostKeyLine) });
    });
    const stream = await new Promise<Duplex & { eof(): void }>((resolve, reject) => relay.forwardOut('127.0.0.1', 0, device, 22, (err, ch) => (err ? reject(err) : resolve(ch as never))));
    const hostKeyLine = device === REF ? e.f.sshd.hostKeyLine : e.f.relay.store.getDevice(device)!.hostKeyLine!;
    await new Promise<void>((resolve, reject) => {
      inner.once('ready', resolve).once('error', reject);
      // strictVendor off: ssh2 would send OpenSSH's extensions only to an `OpenSSH_N` version, which the built-in server's is not.
      inner.connect({ sock: stream, username: LOGIN, privateKey, hostVerifier: pinned(hostKeyLine), strictVendor: false });
    });
    inner.on('error', () => {});
    return { inner, stream, end };
  } catch (err) {
    end();
    throw err;
  }
}

/** Starts `command` on the connection; resolves once its first output has come back, or rejects when the session is refused. */
function startCommand(inner: Login['inner'], command: string): Promise<void> {
  return new Promise<void>((resolve, reject) => inner.exec(command, (err, ch) => {
    if (err) return reject(err);
    ch.resume();
    ch.stderr.resume();
    ch.once('data', () => resolve());
  }));
}

/**
 * Logs in to `device`, starts `command`, then half-closes the tunnelled stream under the SSH
 * connection (EOF, no close) and resolves with how long the server took to close it, or
 * null when it did not within PROBE_TIMEOUT_MS.
 */
async function halfCloseAfterLogin(device: string, command: string): Promise<number | null> {
  const { inner, stream, end } = await login(device);
  try {
    await startCommand(inner, command);
    const started = performance.now();
    const closed = new Promise<number>((resolve) => stream.once('close', () => resolve(Math.round(performance.now() - started))));
    stream.eof();
    return await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), PROBE_TIMEOUT_MS).unref())]);
  } finally {
    end();
  }
}

test('a logged-in connection whose client stream ends is closed, as by sshd, and its command ended', { timeout: 60_000 }, async (t) => {
  // A sleep no other process has: its length (about a day) is made of this process's id and the device's place.
  const sleep = (host: string) => `sleep ${[REF, DEV].indexOf(host) + 1}${process.pid}`;
  // sshd leaves a command without a terminal running until it touches its closed pipes; the
  // built-in server ends a session's processes when its channel closes (docs/security.md).
  t.after(() => { spawnSync('pkill', ['-KILL', '-f', `^${sleep(REF)}$`]); });
  const refMs = await halfCloseAfterLogin(REF, `echo started; exec ${sleep(REF)}`);
  assert.notEqual(refMs, null, 'reference: sshd closed the connection when its input ended');
  const devMs = await halfCloseAfterLogin(DEV, `echo started; exec ${sleep(DEV)}`);
  t.diagnostic(`close after EOF: sshd ${refMs} ms, built-in server ${devMs} ms`);
  assert.notEqual(devMs, null, `the built-in server closed the connection within ${PROBE_TIMEOUT_MS} ms of its input ending, as sshd did in ${refMs} ms`);
  await eventually(() => processesMatching(`^${sleep(DEV)}$`).length === 0, 5_000, `no '${sleep(DEV)}' left on the device`);
});

test('after no-more-sessions@openssh.com, a new session is refused (sshd ends the whole connection)', { timeout: 30_000 }, async () => {
  const afterNoMoreSessions = async (device: string) => {
    const { inner, end } = await login(device);
    try {
      await startCommand(inner, 'echo first');
      await new Promise<void>((resolve, reject) => inner.openssh_noMoreSessions((err) => (err ? reject(err) : resolve())));
      return await startCommand(inner, 'echo second').then(() => 'opened', (err: Error) => err.message);
    } finally {
      end();
    }
  };
  // sshd takes a session asked for after it as an attack and disconnects.
  assert.match(await afterNoMoreSessions(REF), /No response from server/, 'reference: sshd refused the session');
  // The built-in server refuses the channel (ssh2's server does so itself), administratively prohibited.
  assert.match(await afterNoMoreSessions(DEV), /Channel open failure/, 'the built-in server refused the session');
});

test('OpenSSH sends no-more-sessions@openssh.com to the built-in server, as to sshd', { timeout: 30_000 }, async () => {
  for (const [s, device] of [[e.f.admin, REF], [e.admin, DEV]] as const) {
    const r = await run('ssh', ['-F', s.config, '-v', device, 'true'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^debug1: Requesting no-more-sessions@openssh\.com/m, device);
  }
});
