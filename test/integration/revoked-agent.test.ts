// Issue #9: an agent whose device was revoked says so once at warn level, retries only at the
// long --revoked-retry interval, and with --exit-on-revoked exits with its own exit code.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnFerry, spawnRelay } from '../helpers/fixture.ts';

const ferry = (args: string[]) => run(process.execPath, [FERRY, ...args], { timeoutMs: 30_000 });

/** How many log lines of `text` have exactly this message. */
function count(text: string, msg: RegExp): number {
  return text.split('\n').filter((l) => msg.test(l)).length;
}

test('a revoked device warns once, keeps retrying slowly, and with --exit-on-revoked exits 77', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`]);
  const token = await ferry(['token', 'create', '--name', 'box', '--approve', '--data-dir', dataDir]);
  assert.equal(token.code, 0, token.stderr);

  const stateDir = join(dir, 'agent');
  // A short interval here, so that the test sees several refused attempts within seconds.
  const agent = spawnFerry(t, ['agent', '--state-dir', stateDir, '--ssh-target', '127.0.0.1:9', '--revoked-retry', '400ms'],
    { FERRY_TOKEN: token.stdout.trim(), FERRY_LOG_LEVEL: 'debug' });
  await agent.waitFor(/"msg":"link up"/);
  const revoke = await ferry(['device', 'revoke', 'box', '--data-dir', dataDir]);
  assert.equal(revoke.code, 0, revoke.stderr);

  await agent.waitFor(/"msg":"the relay refuses this device: it was revoked or removed\. Retrying every 0\.2 s to 0\.4 s in case it is let in again; to enrol anew, stop the agent, empty \S+ and start it with a new token"/);
  // Three more refusals, each logged at debug level only.
  const stillRefused = /"msg":"the relay still refuses this device"/;
  for (let n = 1; n <= 3; n++) await agent.waitFor(new RegExp(`(${stillRefused.source}[\\s\\S]*){${n}}`));
  const logs = agent.stdout() + agent.stderr();
  assert.equal(count(logs, /"msg":"the relay refuses this device/), 1, 'warned once');
  assert.equal(count(logs, /"level":(50|"error")/), 0, `no error lines:\n${logs}`);
  assert.equal(count(logs, /cannot reach the relay/), 0, 'the refusal is not reported as an unreachable relay');
  assert.equal(await agent.stop(), 0);

  // The same device with --exit-on-revoked: it stops at the first refusal with exit code 77.
  const exiting = spawnFerry(t, ['agent', '--state-dir', stateDir, '--exit-on-revoked']);
  const code = await new Promise<number | null>((resolve) => exiting.proc.once('exit', resolve));
  assert.equal(code, 77, exiting.stdout() + exiting.stderr());
  assert.match(exiting.stderr(), /ferry: the relay at 127\.0\.0\.1:\d+ refused this agent's key \(SHA256:\S+\) as 'ferry-agent': the device may have been revoked or removed; enrol again with a new token\nferry: stopping \(--exit-on-revoked\), exit code 77\n/);
});
