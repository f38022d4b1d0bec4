// A device behind a firewall that drops every inbound connection, in network namespaces:
// relay, device and operator each in their own namespace, linked by veth pairs through the
// relay namespace, addressed only from 198.51.100.0/24 (TEST-NET-2) with no route out.
// The relay, the device's sshd (on 127.0.0.1) and the agent run as real processes inside
// their namespaces. Checks: the topology stays inside TEST-NET-2; the operator cannot reach
// the device directly (the firewall drops it; controls show the listener and the routes
// work); `ssh -J` through the relay runs a command on the device and returns its exit code;
// the relay's `devices --json` shows the device online from its own address; and after the
// device's network drops every packet for a while, the agent gives up the silent link and is
// linked again within seconds of the network coming back.
// Needs root, iproute2 and nftables; skips with that reason elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { eventually, fileCleanup, makeKey, run, tempDir, type RunResult } from '../helpers/env.ts';
import { FERRY, spawnAgent, spawnFerry } from '../helpers/fixture.ts';
import {
  HELLO_LISTENER, assertInsideTestNet, relayKeyLineOf, startDeviceSshd, createTopology, droppedPackets, dropAllTraffic, firewallDevice, inNs, must, netnsSkipReason, restoreTraffic, tcpProbe, type Topology,
} from '../helpers/netns.ts';
import { sshSetup, type SshSetup } from '../helpers/ssh-client.ts';

const skip = netnsSkipReason();
const suite = fileCleanup(after);

/** The relay's SSH port inside its own namespace: nothing else listens there, so a fixed port is safe. */
const RELAY_PORT = 2222;
/** A port on the device that has a listener on every address (so only the firewall can stop a connection). */
const BAIT_PORT = 22;
/** A port in the operator namespace that the device dials out to, as a control. */
const OPERATOR_PORT = 7000;
/** How long a direct connection attempt may hang before it counts as dropped. */
const PROBE_MS = 1_500;

let topo: Topology;
let op: SshSetup;
let sshdPort: number;
let relayDataDir: string;

before(async () => {
  if (skip) return;
  const dir = tempDir(suite);
  topo = await createTopology(suite, String(process.pid));
  await firewallDevice(topo.device);

  const admin = makeKey(dir, 'admin_key');
  const dataDir = join(dir, 'relay');
  relayDataDir = dataDir;
  const relay = spawnFerry(suite, ['relay', '--data-dir', dataDir, '--ssh-listen', `0.0.0.0:${RELAY_PORT}`,
    '--public-address', `${topo.relayToDevice}:${RELAY_PORT}`, '--admin-key', `${admin.path}.pub`], {}, [...inNs(topo.relay), process.execPath, FERRY]);
  await relay.waitFor(/listening on 0\.0\.0\.0:2222/);

  const token = await must('ip', ['netns', 'exec', topo.relay, process.execPath, FERRY, 'token', 'create', '--name', 'cam', '--approve', '--data-dir', dataDir]);

  // The device's own sshd, on its loopback only.
  const info = await startDeviceSshd(suite, join(dir, 'sshd'), topo.device, `${admin.path}.pub`);
  sshdPort = info.port;

  // Listeners for the controls: one on every device address (behind the firewall), one in the operator namespace.
  const bait = spawnFerry(suite, [topo.deviceAddress, String(BAIT_PORT)], {}, [...inNs(topo.device), process.execPath, '-e', HELLO_LISTENER]);
  const opListener = spawnFerry(suite, [topo.operatorAddress, String(OPERATOR_PORT)], {}, [...inNs(topo.operator), process.execPath, '-e', HELLO_LISTENER]);
  await Promise.all([bait.waitFor(/listening/), opListener.waitFor(/listening/)]);

  // The agent dials out to the address the token names; nothing dials in.
  await spawnAgent(suite, join(dir, 'agent'), ['--token', token.stdout.trim(), '--ssh-target', `127.0.0.1:${sshdPort}`],
    [...inNs(topo.device), process.execPath, FERRY]);

  op = sshSetup(dir, {
    port: RELAY_PORT, relayHost: topo.relayToOperator, user: 'admin', keyPath: admin.path,
    relayKeyLine: relayKeyLineOf(dataDir),
    deviceUser: info.user, deviceKeys: { '*': info.hostKeyLine }, connectTimeout: 5,
  });
});

/** OpenSSH from the operator namespace, with the file's fixed option list. */
function operatorSsh(args: string[]): Promise<RunResult> {
  return run('ip', ['netns', 'exec', topo.operator, 'ssh', '-F', op.config, ...args], { timeoutMs: 30_000 });
}

test('the namespaces use only 198.51.100.0/24 and loopback, with no route out', { skip }, async () => {
  await assertInsideTestNet(topo);
});

test('the operator cannot connect to the device directly: the firewall drops it', { skip }, async () => {
  const droppedBefore = await droppedPackets(topo.device);
  // The connections a firewall-less device would take: its SSH port, and its sshd's port.
  const [toBait, toSshd] = await Promise.all([
    tcpProbe(topo.operator, topo.deviceAddress, BAIT_PORT, PROBE_MS),
    tcpProbe(topo.operator, topo.deviceAddress, sshdPort, PROBE_MS),
  ]);
  assert.equal(toBait, 'timeout', `port ${BAIT_PORT} should be silently dropped`);
  assert.equal(toSshd, 'timeout', `port ${sshdPort} should be silently dropped`);
  const dropped = await droppedPackets(topo.device);
  assert.ok(dropped > droppedBefore, `the device firewall should count the dropped SYNs (before ${droppedBefore}, after ${dropped})`);

  // Controls: the listener is there, the device can dial out through the relay namespace (so the
  // routes work both ways), and the operator can reach the relay.
  assert.equal(await tcpProbe(topo.device, topo.deviceAddress, BAIT_PORT, PROBE_MS), 'connected', 'the bait listener answers on the device itself');
  assert.equal(await tcpProbe(topo.device, topo.operatorAddress, OPERATOR_PORT, PROBE_MS), 'connected', 'the device can dial out to the operator namespace');
  assert.equal(await tcpProbe(topo.operator, topo.relayToOperator, RELAY_PORT, PROBE_MS), 'connected', 'the operator reaches the relay');
});

test('ssh -J through the relay runs a command on the device and returns its exit code', { skip }, async () => {
  const r = await operatorSsh(['-J', 'relay', 'cam', `echo out; echo err >&2; ip -4 -o addr show; exit 7`]);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /^out\n/);
  assert.equal(r.stderr, 'err\n');
  // The command ran inside the device namespace.
  assert.match(r.stdout, new RegExp(`inet ${topo.deviceAddress.replace(/\./g, '\\.')}/30`));

  const ok = await operatorSsh(['-J', 'relay', 'cam', 'true']);
  assert.equal(ok.code, 0, ok.stderr);
});

test("the relay's devices --json shows the device online from the device namespace's address", { skip }, async () => {
  const r = await operatorSsh(['relay', 'devices', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = (JSON.parse(r.stdout) as Record<string, unknown>[]).find((x) => x.name === 'cam');
  assert.ok(d, r.stdout);
  assert.equal(d.status, 'approved');
  assert.equal(d.online, true);
  assert.equal(d.remoteAddress, topo.deviceAddress);
});

test('after the network drops (no FIN, no RST) and comes back, the agent notices the silent link and is reachable again within seconds', { skip }, async () => {
  const dir = tempDir(suite);
  const token = await must('ip', ['netns', 'exec', topo.relay, process.execPath, FERRY, 'token', 'create', '--name', 'flaky', '--approve', '--data-dir', relayDataDir]);
  // Pings every 2 s; ssh2's own keepalive would give up only after 100 missed ones, so what
  // ends the silent link is the agent's silence check (2 s + the 5 s grace).
  const agent = await spawnAgent(suite, join(dir, 'agent'), ['--token', token.stdout.trim(), '--ssh-target', `127.0.0.1:${sshdPort}`,
    '--keepalive-interval', '2s', '--keepalive-count', '100'], [...inNs(topo.device), process.execPath, FERRY]);
  const ups = () => (agent.stderr().match(/"msg":"link up"/g) ?? []).length;
  assert.equal(ups(), 1);

  await dropAllTraffic(topo.device);
  try {
    await agent.waitFor(/"reason":"nothing from the relay for 7 s: the network path is gone".*"msg":"link down"/, 20_000);
  } finally {
    await restoreTraffic(topo.device);
  }
  const restored = Date.now();
  await eventually(() => ups() === 2 || null, 20_000, 'the agent to be linked again');
  const back = Date.now() - restored;
  // A fresh connection is dialled every second while the path is silent; without that, the
  // kernel's SYN resends (1, 3, 7, 15 s) would decide when the agent finds the path again.
  assert.ok(back < 5_000, `linked again ${back} ms after the network came back`);

  const r = await operatorSsh(['-J', 'relay', 'flaky', 'echo back']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'back\n');
});
