// A cloned state dir: the same agent image on two machines, so two agents with one device
// identity (src/relay/clone-detector.ts, device-link.ts). The relay must notice, warn once,
// show it in `devices`, tell the agents what to do, and slow their replacing each other
// down instead of flapping every second.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startAgent } from '../../src/agent/agent.ts';
import { createLogger } from '../../src/common/log.ts';
import { createToken } from '../../src/relay/operations/index.ts';
import { startRelay } from '../../src/relay/relay.ts';
import { eventually, fileCleanup, makeKey, tempDir } from '../helpers/env.ts';
import { operate, testAgentConfig, testRelayConfig } from '../helpers/fixture.ts';
import { relayCommand, sshSetup } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);

/** A logger whose JSON lines are kept, for asserting on warnings. */
function capturingLogger(name: string, level: 'info' | 'debug' = 'info'): { log: ReturnType<typeof createLogger>; lines: () => { level: number; msg: string }[] } {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  return { log: createLogger(level, name, { format: 'json', destination: sink }), lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string }) };
}

const WARN = 40;

test('two agents sharing one state dir: the relay warns once, marks the device, tells the agents, and slows the flapping', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(suite);
  const adminKey = makeKey(dir, 'admin_key');
  // Debug level: the relay notes each link it holds off at debug only.
  const relayLog = capturingLogger('relay', 'debug');
  const relay = await startRelay(testRelayConfig(join(dir, 'relay'), [adminKey.pub]), { log: relayLog.log });
  suite.after(() => relay.stop());
  const admin = sshSetup(dir, { port: relay.sshAddress.port, user: 'admin', keyPath: adminKey.path, relayKeyLine: relay.hostKeyLine });
  const tok = operate(relay, createToken, { name: 'cam', approve: true }).token;

  const started = Date.now();
  const first = capturingLogger('agent-1');
  const stateDir = join(dir, 'agent-1');
  const a = await startAgent(testAgentConfig(stateDir, { token: tok, relay: `127.0.0.1:${relay.sshAddress.port}`, sshTarget: 'embedded' }), { log: first.log });
  suite.after(() => a.stop());
  await a.waitUntilUp();
  // The same image flashed on a second machine: a copy of the enrolled state dir.
  const copyDir = join(dir, 'agent-2');
  cpSync(stateDir, copyDir, { recursive: true });
  const second = capturingLogger('agent-2');
  const b = await startAgent(testAgentConfig(copyDir, { relay: `127.0.0.1:${relay.sshAddress.port}` }), { log: second.log });
  suite.after(() => b.stop());

  await eventually(() => relay.registry.cloneOf('cam'), 30_000, 'the relay to notice the clone');
  const text = await relayCommand(admin, ['devices']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /CLONED\?/);
  assert.match(text.stdout, /^cam .* yes: 127\.0\.0\.1/m);
  const listed = await relayCommand(admin, ['devices', '--json']);
  const cam = (JSON.parse(listed.stdout) as { name: string; cloned: boolean | null; cloneAddresses: string[] }[]).find((d) => d.name === 'cam')!;
  assert.equal(cam.cloned, true);
  assert.deepEqual(cam.cloneAddresses, ['127.0.0.1']);

  // One of them was replaced after the episode began, and says so at warn level.
  const told = () => [...first.lines(), ...second.lines()].filter((l) => l.level === WARN && /identity is in use by another machine at 127\.0\.0\.1: re-enroll one of them with a new token \(delete its state dir\)/.test(l.msg));
  await eventually(() => told().length > 0 || null, 30_000, 'an agent to warn that another machine uses its identity');

  // Let them contend until the relay has held the other machine off ten times; without
  // the hold-off they would replace each other about every second and this never happens.
  const heldOff = () => relayLog.lines().filter((l) => /clone hold-off/.test(l.msg)).length;
  await eventually(() => heldOff() >= 10 || null, 60_000, 'the relay to hold the other machine off ten times');
  const replaces = relay.store.listAudit({ since: started, device: 'cam', limit: 1_000 })
    .filter((e) => e.action === 'device.connect' && (e.detail as { replaced?: boolean }).replaced === true).length;
  const window = Math.round((Date.now() - started) / 1000);
  t.diagnostic(`${replaces} replaces in ${window} s`);
  assert.ok(replaces <= 6, `${replaces} replaces in ${window} s`);
  const warnings = relayLog.lines().filter((l) => l.level === WARN && /more than one machine with the same identity/.test(l.msg));
  assert.equal(warnings.length, 1, 'the relay warns once per episode, not per replace');
  assert.equal(relay.registry.size, 1, 'one of them holds the link');
});
