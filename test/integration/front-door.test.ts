// Hardening at the relay's SSH front door, against an in-process relay with small limits and
// one connected device: garbage and truncated handshakes are dropped without harming the
// device's link; a flood of silent TCP connections is shed at the per-address and global
// limits while the device stays reachable; a connection that never authenticates is dropped
// after the login grace time; too many authentication attempts end the connection; only
// modern algorithms are offered (ssh-audit, and legacy-only OpenSSH clients are refused);
// non-Ed25519 operator keys are refused; a device key can open nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Agent } from '../../src/agent/agent.ts';
import type { RelayConfig } from '../../src/relay/config.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { eventually, fileCleanup, makeKey, missing, run } from '../helpers/env.ts';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { relayCommand, ssh } from '../helpers/ssh-client.ts';

const { Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

/** Small limits, so that every one of them is reached quickly. */
const LIMITS = {
  loginGraceMs: 1_000,
  maxAuthAttempts: 3,
  maxUnauthenticatedPerAddress: 50,
  maxUnidentified: 100,
} satisfies Partial<RelayConfig>;
/** Silent connections never send their identification line. */
const MAX_SILENT = LIMITS.maxUnidentified;

/** How long the relay may take beyond a deadline it enforces (timers, a busy event loop). */
const SLACK_MS = 2_000;

let f: Fixture;
let cam: Agent;
let port: number;
/** The device's link as the relay holds it at the start: it must be the same object at the end of every test. */
let camLink: unknown;
const downs: string[] = [];
const suite = fileCleanup(after);

before(async () => {
  f = await startFixture(suite, LIMITS);
  port = f.relay.sshAddress.port;
  cam = await f.device('cam');
  // Any link drop during this file is a failure of the front door to isolate a bad peer.
  cam.on('down', (reason: string) => downs.push(reason));
  camLink = f.relay.registry.get('cam');
  assert.ok(camLink, 'the relay holds a link for cam');
});

/** The device is still reachable end to end, over the same link it had at the start. */
async function assertDeviceUnharmed(): Promise<void> {
  assert.deepEqual(downs, [], 'the device link must not drop');
  // (Not agent.online: it is a value copied once when the agent starts, see the report.)
  assert.equal(f.relay.registry.get('cam'), camLink, 'the relay still holds the original link');
  const r = await ssh(f.admin, ['-J', 'relay', 'cam', 'exit 7']);
  assert.equal(r.code, 7, r.stderr);
}

interface RawResult { closedBy: 'server' | 'timeout'; afterMs: number; received: string }

/**
 * Opens a raw TCP connection, lets `act` write to it, and waits (at most `waitMs`) for the
 * relay to close it. We never close it ourselves before the deadline.
 */
function rawConnection(act: (s: Socket) => void, waitMs: number, localAddress?: string): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let received = '';
    const s = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      s.removeAllListeners('close');
      s.destroy();
      resolve({ closedBy: 'timeout', afterMs: Date.now() - started, received });
    }, waitMs);
    s.on('error', () => { /* a reset from the relay is one way of closing */ });
    s.on('data', (d: Buffer) => { received += d.toString('latin1'); });
    s.once('connect', () => act(s));
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ closedBy: 'server', afterMs: Date.now() - started, received });
    });
  });
}

/** Connects an ssh2 client; resolves on 'ready', rejects on the first error or close before it. */
function sshClient(config: ssh2.ConnectConfig): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.once('error', (err) => reject(err));
    c.once('close', () => reject(new Error('closed before ready')));
    c.connect({ host: '127.0.0.1', port, readyTimeout: 10_000, ...config });
  });
}

/** The relay's host key as a wire blob, to pin it in ssh2 clients. */
function relayHostKey(): Buffer {
  return Buffer.from(f.relay.hostKeyLine.split(' ')[1]!, 'base64');
}

const pinRelay = { hostVerifier: (key: Buffer) => key.equals(relayHostKey()) };

test('garbage bytes and truncated handshakes are dropped, and the device is unharmed', async () => {
  const cases: [string, (s: Socket) => void][] = [
    ['an HTTP request', (s) => s.write('GET / HTTP/1.1\r\nHost: relay\r\n\r\n')],
    ['64 KiB without a newline', (s) => s.write(Buffer.alloc(64 * 1024, 0x41))],
    ['an SSH ident then a bogus packet length', (s) => { s.write('SSH-2.0-fuzz\r\n'); s.write(Buffer.from('ffffffff00000000000000000000', 'hex')); }],
    ['an SSH ident then 1 MiB of random bytes', (s) => { s.write('SSH-2.0-fuzz\r\n'); s.write(randomish(1024 * 1024)); }],
    // A KEXINIT whose length header promises 996 bytes, of which only 2 arrive; the client then stalls.
    ['a truncated KEXINIT, then silence', (s) => { s.write('SSH-2.0-fuzz\r\n'); s.write(Buffer.from('000003e40a14', 'hex')); }],
    ['a truncated KEXINIT, then EOF', (s) => { s.write('SSH-2.0-fuzz\r\n'); s.write(Buffer.from('000003e40a14', 'hex')); s.end(); }],
  ];
  for (const [what, act] of cases) {
    const r = await rawConnection(act, LIMITS.loginGraceMs + SLACK_MS);
    assert.equal(r.closedBy, 'server', `${what}: the relay should drop the connection (waited ${r.afterMs} ms)`);
    assert.match(r.received, /^SSH-2\.0-ferry-relay\r\n/, `${what}: the relay should have spoken SSH before dropping it`);
  }
  await assertDeviceUnharmed();
});

/** Bytes that are not SSH, cheaply. */
function randomish(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

test('a flood of silent TCP connections is shed at the limits; the device stays reachable; operators log in after it', { timeout: 60_000 }, async (t) => {
  // An operator connection that was up before the flood: it is authenticated, so the flood must not touch it.
  const op = await sshClient({ username: 'admin', privateKey: readFileSync(f.adminKey.path), ...pinRelay });

  // 300 silent sockets from three loopback source addresses (100 each). Whenever the relay drops
  // an admitted one (login grace), another takes its place, so the limits stay full until we stop.
  const sources = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const flood = startFlood(sources, 100, 3_000);
  try {
    await eventually(() => flood.stats.settledFirstWave === 300, 15_000, 'the first 300 flood connections to be admitted or shed');
    const s = flood.stats;
    t.diagnostic(`first wave: ${JSON.stringify(s)}`);
    assert.ok(s.peakPerAddress <= LIMITS.maxUnauthenticatedPerAddress, `at most ${LIMITS.maxUnauthenticatedPerAddress} silent connections per address, saw ${s.peakPerAddress}`);
    assert.ok(s.peakTotal <= MAX_SILENT, `at most ${MAX_SILENT} silent connections in all, saw ${s.peakTotal}`);
    assert.equal(s.peakTotal, MAX_SILENT, 'the flood should have filled the global limit (else this test proves nothing)');
    assert.ok(s.shed >= 300 - MAX_SILENT, `the rest of the first wave should be shed, saw ${s.shed}`);

    // While the flood holds every unauthenticated slot: the device link is the same one, and the
    // operator's existing connection reaches the device's sshd.
    assert.equal(f.relay.registry.get('cam'), camLink, 'the device link is the one from before the flood');
    const banner = await firstLine(await forwardOut(op, 'cam', 22));
    assert.match(banner, /^SSH-2\.0-OpenSSH/);
    assert.ok(flood.running() && flood.stats.admittedNow > 0, 'the flood was still on while the device was reached');
  } finally {
    t.diagnostic(`at the end: ${JSON.stringify(flood.stats)}`);
    flood.stop();
    op.end();
  }
  // Once the flood is gone, a new operator logs in (the relay frees the slots as it sees the closes).
  const who = await eventually(async () => { const r = await relayCommand(f.admin, ['whoami']); return r.code === 0 ? r : null; }, 10_000, 'an operator login after the flood');
  assert.match(who.stdout, /admin/);
  await assertDeviceUnharmed();
});

interface FloodStats { opened: number; shed: number; admittedNow: number; peakTotal: number; peakPerAddress: number; settledFirstWave: number }

/**
 * Opens `perSource` silent connections from each source address; a connection counts as
 * admitted when the relay sends its SSH ident (a shed one is closed before a byte is sent).
 * Admitted connections that the relay drops are replaced, up to `maxOpens` in all.
 */
function startFlood(sources: string[], perSource: number, maxOpens: number) {
  let on = true;
  const sockets = new Set<Socket>();
  const perAddress = new Map<string, number>();
  const stats: FloodStats = { opened: 0, shed: 0, admittedNow: 0, peakTotal: 0, peakPerAddress: 0, settledFirstWave: 0 };
  const firstWave = sources.length * perSource;
  const open = (src: string) => {
    if (!on || stats.opened >= maxOpens) return;
    const inFirstWave = stats.opened++ < firstWave;
    const s = connect({ host: '127.0.0.1', port, localAddress: src });
    sockets.add(s);
    let admitted = false;
    s.on('error', () => {});
    s.once('data', () => {
      admitted = true;
      if (inFirstWave) stats.settledFirstWave++;
      const n = (perAddress.get(src) ?? 0) + 1;
      perAddress.set(src, n);
      stats.admittedNow++;
      stats.peakPerAddress = Math.max(stats.peakPerAddress, n);
      stats.peakTotal = Math.max(stats.peakTotal, stats.admittedNow);
    });
    s.once('close', () => {
      sockets.delete(s);
      if (admitted) {
        perAddress.set(src, perAddress.get(src)! - 1);
        stats.admittedNow--;
        open(src);
      } else {
        stats.shed++;
        if (inFirstWave) stats.settledFirstWave++;
      }
    });
  };
  for (const src of sources) for (let i = 0; i < perSource; i++) open(src);
  return {
    stats,
    running: () => on,
    stop() {
      on = false;
      for (const s of sockets) s.destroy();
    },
  };
}

function forwardOut(c: SshClient, host: string, port: number): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`forwardOut ${host}:${port}: no answer within 10 s`)), 10_000);
    c.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
      clearTimeout(timer);
      if (err) reject(err); else resolve(stream);
    });
  });
}

function firstLine(stream: ssh2.ClientChannel): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no line within 10 s, got ${JSON.stringify(text)}`)), 10_000);
    stream.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        stream.close();
        resolve(text.slice(0, nl).trimEnd());
      }
    });
    stream.on('error', reject);
  });
}

test('a connection that never authenticates is dropped after the login grace time', async () => {
  // Silent TCP: not even an SSH ident.
  const silent = await rawConnection(() => {}, LIMITS.loginGraceMs + SLACK_MS);
  assert.equal(silent.closedBy, 'server', `a silent connection should be dropped (waited ${silent.afterMs} ms)`);
  assert.ok(silent.afterMs >= LIMITS.loginGraceMs - 100, `dropped after the grace time, not before (${silent.afterMs} ms)`);

  // A client that finishes key exchange and then never answers the authentication step.
  let askedToAuthenticate = false;
  const started = Date.now();
  const outcome = await new Promise<string>((resolve) => {
    const c = new Client();
    const timer = setTimeout(() => { c.end(); resolve('still open'); }, LIMITS.loginGraceMs + SLACK_MS);
    c.on('error', () => {});
    c.once('ready', () => { clearTimeout(timer); c.end(); resolve('authenticated?!'); });
    c.once('close', () => { clearTimeout(timer); resolve('closed'); });
    c.connect({ host: '127.0.0.1', port, username: 'admin', readyTimeout: 30_000, ...pinRelay,
      authHandler: () => { askedToAuthenticate = true; /* and never answer */ } });
  });
  const elapsed = Date.now() - started;
  assert.ok(askedToAuthenticate, 'the key exchange completed, so the grace timer is what drops it');
  assert.equal(outcome, 'closed', `a stalled login should be dropped within ${LIMITS.loginGraceMs + SLACK_MS} ms`);
  assert.ok(elapsed >= LIMITS.loginGraceMs - 100, `dropped after the grace time, not before (${elapsed} ms)`);
  await assertDeviceUnharmed();
});

test('too many authentication attempts end the connection (OpenSSH offering six wrong keys)', async () => {
  const wrong = [1, 2, 3, 4, 5, 6].map((i) => makeKey(f.dir, `wrong_${i}`));
  const r = await run('ssh', ['-v', '-F', f.admin.config, ...wrong.flatMap((k) => ['-i', k.path]), 'relay', 'whoami'], { timeoutMs: 20_000 });
  assert.equal(r.code, 255);
  const offered = r.stderr.split('\n').filter((l) => /Offering public key: .*wrong_/.test(l)).length;
  assert.ok(offered < wrong.length, `the relay should hang up before all ${wrong.length} keys are tried, but ${offered} were offered:\n${r.stderr}`);
  assert.match(r.stderr, /Received disconnect|Disconnected from|Connection closed/);
});

test('too many authentication attempts end the connection (ssh2 client trying keys in a loop)', async () => {
  const max = 20;
  let tries = 0;
  const outcome = await new Promise<string>((resolve) => {
    const c = new Client();
    const timer = setTimeout(() => { c.end(); resolve('still open'); }, 15_000);
    c.on('error', (err) => { clearTimeout(timer); resolve(`error: ${err.message}`); });
    c.once('ready', () => { clearTimeout(timer); c.end(); resolve('authenticated?!'); });
    c.once('close', () => { clearTimeout(timer); resolve('closed'); });
    c.connect({
      host: '127.0.0.1', port, username: 'admin', readyTimeout: 15_000, ...pinRelay,
      authHandler: (_left, _partial, next) => {
        if (++tries > max) return next(false as unknown as 'none');
        const key = generateKeyPair('stranger').privateKey;
        next({ type: 'publickey', username: 'admin', key });
      },
    });
  });
  // The client asks its handler once more after the last refusal, before it sees the hang-up.
  assert.ok(tries <= LIMITS.maxAuthAttempts + 2, `the relay should stop answering after ${LIMITS.maxAuthAttempts} attempts, but the client tried ${tries} keys (${outcome})`);
  assert.equal(outcome, 'closed', 'the relay should have closed the connection');
  assert.doesNotMatch(outcome, /All configured authentication methods failed/, 'the relay, not the client, should end it');
});

test('the attempt cap counts failures as OpenSSH MaxAuthTries does: one wrong key, then the right one, logs in', async () => {
  // OpenSSH offers keys in order; an operator whose first key is another one must still get in
  // well within maxAuthAttempts (3 here: one failure, then success).
  const other = makeKey(f.dir, 'other_key');
  const r = await run('ssh', ['-v', '-F', f.admin.config, '-i', other.path, 'relay', 'whoami'], { timeoutMs: 20_000 });
  const lines = r.stderr.split('\n').filter((l) => /Offering public key|Authenticated|disconnect|denied/i.test(l)).join('\n');
  assert.equal(r.code, 0, `one wrong key before the right one should not exhaust ${LIMITS.maxAuthAttempts} attempts:\n${lines}`);
  assert.match(r.stdout, /admin/);
});

test('only modern algorithms: ssh-audit reports no failures', { skip: missing('ssh-audit', 'ssh-audit') }, async () => {
  const r = await run('ssh-audit', ['-n', '-t', '10', '-p', String(port), '127.0.0.1'], { timeoutMs: 30_000 });
  const out = r.stdout + r.stderr;
  // ssh-audit exit codes: 0 good, 2 warnings, 3 failures, 1 connection error.
  assert.ok(r.code === 0 || r.code === 2, `ssh-audit exited ${r.code}:\n${out}`);
  assert.match(out, /\(gen\) banner: SSH-2\.0-ferry-relay/, 'ssh-audit should have reached the relay');
  assert.match(out, /\(kex\) curve25519-sha256/);
  const fails = out.split('\n').filter((l) => /\[fail\]/.test(l));
  assert.deepEqual(fails, [], `ssh-audit failures:\n${out}`);
  // Whatever ssh-audit only warns about, the failure message above shows; warnings are not failures.
});

test('clients that offer only legacy algorithms are refused', async () => {
  const legacy: [string[], RegExp][] = [
    [['KexAlgorithms=diffie-hellman-group14-sha1'], /no matching key exchange method/],
    [['HostKeyAlgorithms=rsa-sha2-512'], /no matching host key type/],
    [['Ciphers=aes128-cbc'], /no matching cipher/],
    // CTR is accepted for older clients, but only with an encrypt-then-MAC MAC.
    [['Ciphers=aes128-ctr', 'MACs=hmac-sha2-256'], /no matching MAC/],
  ];
  for (const [options, expected] of legacy) {
    const r = await ssh(f.admin, [...options.flatMap((o) => ['-o', o]), 'relay', 'whoami'], { timeoutMs: 20_000 });
    assert.equal(r.code, 255, `${options.join(' ')} should be refused`);
    assert.match(r.stderr, expected, options.join(' '));
  }
});

test('a client that offers only CTR ciphers gets one, with an encrypt-then-MAC MAC', async () => {
  const r = await ssh(f.admin, ['-v', '-o', 'Ciphers=aes256-ctr,aes128-ctr', 'relay', 'whoami'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^admin\b/);
  assert.match(r.stderr, /kex: server->client cipher: aes256-ctr MAC: hmac-sha2-256-etm@openssh\.com/);
});

test('an operator key that is not Ed25519 is refused', async () => {
  const rsa = join(f.dir, 'rsa_key');
  const gen = spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-C', 'rsa', '-f', rsa]);
  assert.equal(gen.status, 0, String(gen.stderr));
  const rsaLine = readFileSync(`${rsa}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');

  // The command line will not store it.
  const add = await relayCommand(f.admin, ['user', 'add', 'rsa-user', '--key', rsaLine]);
  assert.notEqual(add.code, 0, 'user add with an RSA key should fail');
  assert.match(add.stderr, /Ed25519/);

  // Even a store that somehow holds it (an old row, a hand edit) does not let it in.
  const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${rsa}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1]!;
  f.relay.store.addUser('legacy', ['operator'], [{ fingerprint: fp, line: rsaLine }], Date.now());
  const r = await run('ssh', ['-v', '-F', f.admin.config, '-i', rsa, '-l', 'legacy', 'relay', 'whoami'], { timeoutMs: 20_000 });
  assert.match(r.stderr, /Offering public key: .*rsa_key RSA/, 'OpenSSH should have offered the RSA key to the relay');
  assert.equal(r.code, 255, r.stderr);
  assert.match(r.stderr, /Permission denied/);

  // ssh2 as a client offers it with a signature as well: refused.
  await assert.rejects(sshClient({ username: 'legacy', privateKey: readFileSync(rsa), ...pinRelay }), /All configured authentication methods failed/);
});

test('a device key opens no shell, no exec, no forwarding, and is no operator', async () => {
  const deviceKey = readFileSync(join(f.dir, 'agent-cam', 'id_ed25519'));
  // The device key is no operator key.
  await assert.rejects(sshClient({ username: 'admin', privateKey: deviceKey, ...pinRelay }), /All configured authentication methods failed/);

  const c = await sshClient({ username: 'ferry-agent', privateKey: deviceKey, ...pinRelay });
  try {
    const refused = (what: string, start: (cb: (err: Error | undefined, x?: unknown) => void) => void) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no answer within 10 s`)), 10_000);
      start((err, x) => {
        clearTimeout(timer);
        if (err) resolve();
        else {
          (x as { close?: () => void; end?: () => void })?.close?.();
          reject(new Error(`${what} was allowed for a device key`));
        }
      });
    });
    await refused('exec', (cb) => c.exec('id', (err, s) => cb(err, s)));
    await refused('shell', (cb) => c.shell((err, s) => cb(err, s)));
    await refused('sftp', (cb) => c.sftp((err, s) => cb(err, s)));
    await refused('direct-tcpip to the device by name', (cb) => c.forwardOut('127.0.0.1', 0, 'cam', 22, (err, s) => cb(err, s)));
    await refused('direct-tcpip to an address', (cb) => c.forwardOut('127.0.0.1', 0, '127.0.0.1', f.sshd.port, (err, s) => cb(err, s)));
    await refused('direct-streamlocal', (cb) => c.openssh_forwardOutStreamLocal('/run/sshd.pid', (err, s) => cb(err, s)));
    await refused('tcpip-forward on a wildcard address', (cb) => c.forwardIn('0.0.0.0', 8080, (err) => cb(err)));
    await refused('tcpip-forward as another device', (cb) => c.forwardIn('other-device', 22, (err) => cb(err)));
  } finally {
    c.end();
  }
  assert.equal(f.relay.registry.get('other-device'), undefined);
  await assertDeviceUnharmed();
});
