// Port forwarding inside a session on the agent's built-in SSH server, with the real
// OpenSSH client through the relay: `ssh -L` to an HTTP server on the device's loopback
// works; `-L` to a destination outside the agent's allowlist is refused, even when that
// destination is up (one device with the default rules, one with a custom allowlist);
// `-R` and agent forwarding are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { eventually, fileCleanup, missing, run } from '../helpers/env.ts';
import { spawnSsh, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import { ssh } from '../helpers/ssh-client.ts';

/** Default rules: loopback (127.0.0.1, localhost, ::1), any port. */
const OPEN = 'fwd-default';
/** A custom allowlist: 127.0.0.1 on the port of server A only. */
const STRICT = 'fwd-strict';
const suite = fileCleanup(after);
let e: EmbeddedFixture;
/** Three services "on the device": A and B on 127.0.0.1, C on 127.0.0.2 (also loopback on Linux). */
const servers: Record<'A' | 'B' | 'C', { port: number; host: string }> = {} as never;
let sockets = 0;

function serve(name: 'A' | 'B' | 'C', host: string): Promise<void> {
  const server: Server = createServer((req, res) => res.end(`page ${name} ${req.url}\n`));
  suite.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      servers[name] = { host, port: (server.address() as { port: number }).port };
      resolve();
    });
  });
}

before(async () => {
  await serve('A', '127.0.0.1');
  await serve('B', '127.0.0.1');
  await serve('C', '127.0.0.2');
  e = await startEmbedded(suite, { [OPEN]: null, [STRICT]: [{ host: '127.0.0.1', port: servers.A.port }] });
});

/** GET / over a Unix socket (where ssh -L listens), or host:port; resolves with the body or rejects. */
function get(where: { socketPath: string } | { host: string; port: number }, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * `ssh -N -L SOCKET:host:port DEVICE`, listening on a Unix socket in the temp dir (no
 * local port to race for); resolves once the listener is there. LogLevel INFO on the
 * device connection, so that ssh prints why a channel open failed.
 */
async function forward(t: { after(fn: () => unknown): void }, device: string, host: string, port: number) {
  const socketPath = join(e.f.dir, `fwd-${sockets++}.sock`);
  const p = spawnSsh(t, e.admin, ['-o', 'LogLevel=INFO', '-o', 'ExitOnForwardFailure=yes', '-N', '-L', `${socketPath}:${host}:${port}`, device]);
  await eventually(() => existsSync(socketPath) || p.proc.exitCode !== null, 20_000, `ssh -L to listen on ${socketPath}`);
  assert.equal(p.proc.exitCode, null, `ssh -L exited: ${p.stderr()}`);
  return { socketPath, ssh: p };
}

test('the services are up (so that a refusal below is the allowlist, not a dead port)', async () => {
  for (const name of ['A', 'B', 'C'] as const) assert.equal(await get(servers[name]), `page ${name} /\n`);
});

test('ssh -L to 127.0.0.1 on the device reaches the HTTP server (default rules)', async (t) => {
  const a = await forward(t, OPEN, '127.0.0.1', servers.A.port);
  assert.equal(await get({ socketPath: a.socketPath }, '/hello'), 'page A /hello\n');
  // Several requests, some at once: each is its own direct-tcpip channel.
  const bodies = await Promise.all(Array.from({ length: 8 }, (_, i) => get({ socketPath: a.socketPath }, `/p${i}`)));
  assert.deepEqual(bodies, Array.from({ length: 8 }, (_, i) => `page A /p${i}\n`));
  const b = await forward(t, OPEN, '127.0.0.1', servers.B.port);
  assert.equal(await get({ socketPath: b.socketPath }), 'page B /\n', 'any port on loopback by default');
});

test('ssh -L to 127.0.0.2 is refused with the default rules (loopback means 127.0.0.1, localhost, ::1)', async (t) => {
  const c = await forward(t, OPEN, servers.C.host, servers.C.port);
  await assert.rejects(get({ socketPath: c.socketPath }), 'the request through the refused forward fails');
  await eventually(() => /open failed/.test(c.ssh.stderr()), 10_000, 'ssh to report the refused channel');
});

test('a custom allowlist: the allowed port works, another port on the same host is refused', async (t) => {
  const a = await forward(t, STRICT, '127.0.0.1', servers.A.port);
  assert.equal(await get({ socketPath: a.socketPath }), 'page A /\n');
  const b = await forward(t, STRICT, '127.0.0.1', servers.B.port);
  await assert.rejects(get({ socketPath: b.socketPath }), 'B is up but not in this device\'s allowlist');
  await eventually(() => /open failed/.test(b.ssh.stderr()), 10_000, 'ssh to report the refused channel');
  const c = await forward(t, STRICT, servers.C.host, servers.C.port);
  await assert.rejects(get({ socketPath: c.socketPath }));
});

test('a refusal by the allowlist says "administratively prohibited", as sshd\'s PermitOpen does', async (t) => {
  // sshd answers a forward that PermitOpen forbids with SSH2_OPEN_ADMINISTRATIVELY_PROHIBITED,
  // and OpenSSH prints "open failed: administratively prohibited: …". "connect failed" would
  // tell the operator the service is down, when it is up and the policy said no.
  const b = await forward(t, STRICT, '127.0.0.1', servers.B.port);
  await assert.rejects(get({ socketPath: b.socketPath }));
  const line = await eventually(() => /open failed: .*/.exec(b.ssh.stderr())?.[0], 10_000, 'ssh to report the refused channel');
  assert.match(line, /administratively prohibited/);
});

test('ssh -R is refused (ExitOnForwardFailure makes ssh fail at once)', async () => {
  const r = await ssh(e.admin, ['-o', 'ExitOnForwardFailure=yes', '-R', `0:127.0.0.1:${servers.A.port}`, OPEN, 'echo should-not-run']);
  assert.equal(r.code, 255);
  assert.match(r.stderr, /remote port forwarding failed/);
  assert.equal(r.stdout, '');
  // Without ExitOnForwardFailure the session still works, with a warning.
  const soft = await ssh(e.admin, ['-o', 'LogLevel=INFO', '-R', `0:127.0.0.1:${servers.A.port}`, OPEN, 'echo ran']);
  assert.equal(soft.code, 0, soft.stderr);
  assert.equal(soft.stdout, 'ran\n');
  assert.match(soft.stderr, /remote port forwarding failed/);
});

test('agent forwarding is refused: no SSH_AUTH_SOCK in the session', { skip: missing('ssh-agent', 'openssh-client') }, async (t) => {
  const sock = join(e.f.dir, 'agent.sock');
  const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  t.after(() => { agent.kill('SIGTERM'); });
  await eventually(() => existsSync(sock), 10_000, 'ssh-agent to listen');
  // IdentityAgent on the command line wins over the config's `IdentityAgent none`, which
  // would otherwise keep ssh from asking for agent forwarding at all. (A real sshd gives
  // the session an SSH_AUTH_SOCK for the same command line.)
  const r = await run('ssh', ['-v', '-F', e.admin.config, '-o', `IdentityAgent=${sock}`, '-A', OPEN, 'echo "sock=${SSH_AUTH_SOCK-none}"']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Requesting authentication agent forwarding/, 'the client did ask');
  assert.equal(r.stdout, 'sock=none\n');
});
