// `ferry demo` as the README runs it: it prints ssh commands, and they work as printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { eventually, run } from '../helpers/env.ts';
import { duplicateKeys } from '../helpers/log-lines.ts';
import { spawnFerry } from '../helpers/fixture.ts';
import { WebClient } from '../helpers/web-client.ts';

/** Holds 127.0.0.1:2222 for the test, when nothing else does already (then that is as good). */
async function occupy2222(t: { after(fn: () => unknown): void }): Promise<void> {
  const server: Server = createServer();
  const held = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(2222, '127.0.0.1', () => resolve(true));
  });
  if (held) t.after(() => new Promise((r) => server.close(r)));
}

test('the demo prints an ssh command that reaches its device, and cleans up on Ctrl-C', { timeout: 60_000 }, async (t) => {
  // The demo picks its own free port: 2222, the relay's usual one, may well be taken.
  await occupy2222(t);
  // Info level: the relay's, the agent's and the built-in server's lines are checked below.
  const demo = spawnFerry(t, ['demo', '--log-level', 'info', '--log-format', 'json']);
  await demo.waitFor(/Try, in another terminal:[\s\S]*whoami\n/, 30_000);
  const port = Number(demo.stdout().match(/relay +127\.0\.0\.1:(\d+),/)![1]);
  assert.notEqual(port, 2222);
  const dir = demo.stdout().match(/running in (\S+) /)![1]!;
  const lines = demo.stdout().split('\n').map((l) => l.trim());
  const first = lines.find((l) => l.startsWith('ssh -F') && l.includes('exit 3'))!;
  // Run the printed command line exactly as a user would paste it into a shell.
  const r = await run('bash', ['-c', first]);
  assert.match(r.stdout, /^hello from \S+\nexit code 3\n$/, r.stderr);
  const devices = await run('bash', ['-c', lines.find((l) => l.includes('ferry-relay devices'))!]);
  assert.match(devices.stdout, /\ndemo +approved +online/);
  const copy = await run('bash', ['-c', lines.find((l) => l.startsWith('scp -F'))!]);
  assert.equal(copy.code, 0, copy.stderr);
  // The audit line shows the session and the file as the device reported them (a moment later).
  const auditLine = lines.find((l) => l.includes('ferry-relay audit'))!;
  const audited = await eventually(async () => {
    const a = await run('bash', ['-c', auditLine]);
    return /ssh\.session\.end demo .*"exit":3/.test(a.stdout) && /ssh\.file demo .*copied-over-ferry/.test(a.stdout) ? a.stdout : null;
  }, 10_000, 'the device\'s reports of the exit status and the copied file in the audit log');
  assert.match(audited, /reach\.start demo/);
  // The printed curl line pins the relay's self-signed HTTPS certificate.
  const health = await run('bash', ['-c', lines.find((l) => l.startsWith('curl --cacert'))!]);
  assert.match(health.stdout, /^\{"ok":true,/, health.stderr);
  const whoami = await run('bash', ['-c', lines.find((l) => l.endsWith('whoami'))!]);
  assert.equal(whoami.stdout.split(' ')[0], 'admin');
  // The printed console URL signs a browser in as admin, once; the printed ssh line makes a new one.
  const consoleUrl = lines.find((l) => l.startsWith('console '))!.slice('console '.length);
  const certFile = lines.find((l) => l.startsWith('curl --cacert'))!.split(' ')[2]!;
  const web = new WebClient(new URL(consoleUrl).origin, readFileSync(certFile, 'utf8'));
  const signed = await web.signIn(consoleUrl);
  assert.equal(signed.status, 200, signed.text);
  assert.equal(signed.json.user, 'admin');
  assert.equal((await new WebClient(web.base.href, readFileSync(certFile, 'utf8')).signIn(consoleUrl)).status, 401, 'it works once');
  const fresh = await run('bash', ['-c', /'(ssh -F [^']+ ferry-relay login)'/.exec(demo.stdout())![1]!]);
  assert.match(fresh.stdout, /\/login#[A-Za-z0-9_-]{43}\n$/, fresh.stderr);
  assert.equal(await demo.stop('SIGINT'), 0);
  const logLines = demo.stderr().split('\n').filter(Boolean);
  assert.ok(logLines.some((l) => l.includes('"msg":"session started"')), demo.stderr());
  for (const line of logLines) assert.deepEqual(duplicateKeys(line), [], `a log line with a key twice: ${line}`);
  assert.equal(existsSync(dir), false, 'the demo removes its temp dir');
});
