// A link that comes back: relay killed and restarted, agent frozen and replaced by a second
// agent, device revoked, agent stopped cleanly. Relay and agents run as real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startThrowawaySshd } from '../helpers/throwaway-sshd.ts';
import { eventually, makeKey, tempDir } from '../helpers/env.ts';
import { spawnAgent, spawnFerry, spawnRelay, FERRY } from '../helpers/fixture.ts';
import { relayCommand, ssh, sshSetup, type SshSetup } from '../helpers/ssh-client.ts';
import { run } from '../helpers/env.ts';

type Cleanup = { after(fn: () => unknown): void };

/** A relay process with an admin, a throwaway sshd, and an approved device 'cam' whose agent runs as a process. */
async function setup(t: Cleanup, relayArgs: string[] = []) {
  const dir = tempDir(t);
  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  const relay = await spawnRelay(t, dataDir, ['--admin-key', `${admin.path}.pub`, ...relayArgs]);
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), [admin.pub]);
  t.after(() => sshd.stop());
  const relayKeyLine = readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  const op = sshSetup(dir, { port: relay.port, user: 'admin', keyPath: admin.path, relayKeyLine, deviceUser: sshd.user, deviceKeys: { '*': sshd.hostKeyLine } });
  const token = await relayCommand(op, ['token', 'create', '--name', 'cam', '--approve']);
  assert.equal(token.code, 0, token.stderr);
  const stateDir = join(dir, 'agent');
  // A fast keepalive and a short backoff cap keep these tests quick; the defaults are 20 s × 3 and 60 s.
  const agentArgs = ['--keepalive-interval', '1s', '--backoff-max', '2s'];
  const agent = await spawnAgent(t, stateDir, ['--token', token.stdout.trim(), '--ssh-target', `127.0.0.1:${sshd.port}`, ...agentArgs]);
  return { dir, dataDir, relay, op, stateDir, agent, agentArgs };
}

async function device(op: SshSetup, name: string): Promise<Record<string, unknown> | undefined> {
  const r = await relayCommand(op, ['devices', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Record<string, unknown>[]).find((d) => d.name === name);
}

test('after kill -9 and a restart of the relay, the device is reachable again within seconds', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  assert.equal((await ssh(s.op, ['cam', 'true'])).code, 0);
  await s.relay.stop('SIGKILL');
  const restartedAt = Date.now();
  const relay2 = spawnFerry(t, ['relay', '--data-dir', s.dataDir, '--ssh-listen', `127.0.0.1:${s.relay.port}`, '--http-listen', 'off']);
  await relay2.waitFor(/listening on/);
  // The agent's second "link up" is the readiness event for the new link.
  await s.agent.waitFor(/"msg":"link up"[\s\S]*"msg":"link up"/, 15_000);
  const tookMs = Date.now() - restartedAt;
  const r = await ssh(s.op, ['cam', 'echo back']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'back\n');
  assert.ok(tookMs < 10_000, `the device came back after ${tookMs} ms`);
  t.diagnostic(`device online again ${tookMs} ms after the relay restart began (process start included)`);
});

test('a frozen agent is replaced at once by a second agent with the same state dir', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  s.agent.proc.kill('SIGSTOP');
  t.after(() => s.agent.proc.kill('SIGCONT'));
  const second = await spawnAgent(t, s.stateDir, s.agentArgs);
  const r = await ssh(s.op, ['cam', 'echo second']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'second\n');
  const audit = await relayCommand(s.op, ['audit', '--device', 'cam', '--json']);
  const events = JSON.parse(audit.stdout) as { action: string; detail: Record<string, unknown> }[];
  assert.ok(events.some((e) => e.action === 'device.connect' && e.detail.replaced === true), 'the second link replaced the first');
  await second.stop();
});

test('revoking a device ends its session within a second and keeps it out', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  // A long-running session through the tunnel: it must end when the device is revoked.
  const session = run('ssh', ['-F', s.op.config, 'cam', 'sleep 30'], { timeoutMs: 40_000 });
  await eventually(async () => (await relayCommand(s.op, ['audit', '--device', 'cam', '--json'])).stdout.includes('"reach.start"'), 10_000, 'the session to be open');
  const revokedAt = Date.now();
  const revoke = await relayCommand(s.op, ['device', 'revoke', 'cam']);
  assert.equal(revoke.code, 0, revoke.stderr);
  const ended = await session;
  const tookMs = Date.now() - revokedAt;
  assert.notEqual(ended.code, 0);
  assert.ok(tookMs < 1_500, `session ended ${tookMs} ms after the revoke`);
  const d = await device(s.op, 'cam');
  assert.equal(d?.status, 'revoked');
  assert.equal(d?.online, false);
  assert.equal(d?.lastDisconnectReason, 'revoked');
  // The agent keeps trying and is refused every time.
  await s.agent.waitFor(/refused this agent's key/, 10_000);
  const r = await ssh(s.op, ['cam', 'true']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /device 'cam' is revoked/);
});

test('a revoke made with the local command on the relay host drops the link too', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  const r = await run(process.execPath, [FERRY, 'device', 'revoke', 'cam', '--data-dir', s.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  await s.agent.waitFor(/"msg":"link down"/, 5_000);
  assert.equal((await device(s.op, 'cam'))?.lastDisconnectReason, 'revoked');
});

test('SIGTERM stops the agent cleanly and the relay records why', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  assert.equal(await s.agent.stop('SIGTERM'), 0);
  const d = await eventually(async () => {
    const d = await device(s.op, 'cam');
    return d?.online === false ? d : undefined;
  }, 5_000, 'the device to be offline');
  assert.equal(d!.lastDisconnectReason, 'agent closed');
  const r = await ssh(s.op, ['cam', 'true']);
  assert.match(r.stderr, /device 'cam' is offline \(last seen \d+s ago, agent closed\)/);
});

test('SIGTERM stops the relay cleanly: devices are marked offline with the reason', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  assert.equal(await s.relay.stop('SIGTERM'), 0);
  const r = await run(process.execPath, [FERRY, 'devices', '--json', '--data-dir', s.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const [d] = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(d!.online, false);
  assert.equal(d!.lastDisconnectReason, 'relay shutdown');
});

test('a frozen agent is noticed by the relay keepalive and shown offline with the reason', { timeout: 60_000 }, async (t) => {
  const s = await setup(t, ['--keepalive-interval', '1s', '--keepalive-count', '2']);
  s.agent.proc.kill('SIGSTOP');
  t.after(() => s.agent.proc.kill('SIGCONT'));
  const frozenAt = Date.now();
  const d = await eventually(async () => {
    const d = await device(s.op, 'cam');
    return d?.online === false ? d : undefined;
  }, 10_000, 'the relay to notice the frozen agent');
  assert.equal(d.lastDisconnectReason, 'keepalive timeout');
  t.diagnostic(`noticed after ${Date.now() - frozenAt} ms with keepalive 1 s x 2`);
});

test('an agent killed with SIGKILL shows as offline at once: connection lost', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  await s.agent.stop('SIGKILL');
  const d = await eventually(async () => {
    const d = await device(s.op, 'cam');
    return d?.online === false ? d : undefined;
  }, 5_000, 'the device to be offline');
  assert.equal(d.lastDisconnectReason, 'connection lost');
});
