// A device on a network that lets out nothing but an HTTP proxy (issue 12), in network
// namespaces: relay, device and operator as in firewalled-device.test.ts, and a real tinyproxy
// in the relay namespace on the relay's device-side address. The device's firewall drops every
// packet in and every packet out except TCP to the proxy's ports, so the agent cannot reach
// the relay's SSH port nor its HTTPS port directly: the only way out is a WebSocket
// (wss://RELAY:8443/v1/agent) through the proxy's CONNECT. Checks: the topology stays inside
// TEST-NET-2; controls show the relay's ports are up and only the firewall stops the device, and
// the proxy tunnels to the HTTPS port only (and demands its password where it should); an agent
// given the token and `--proxy` enrols and links over wss (its log names the wss endpoint, the
// relay shows the device online); `ssh -J` runs a command on the device and returns its exit
// code; 100 MiB copied with scp arrive byte-identical; stopping the proxy takes the link down
// and starting it again brings it back by itself; and an agent with a TCP-first endpoint list,
// whose TCP port is dropped, falls back to wss through a password-protected proxy named only by
// HTTPS_PROXY, with the password in no log.
// Depends on the agent's --relay LIST and --proxy/HTTPS_PROXY, and the relay's --http-listen
// serving /v1/agent with tokens that carry both endpoints and the TLS key's pin.
// Needs root, iproute2, nftables and tinyproxy; skips with that reason elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeToken } from '../../src/protocol/token.ts';
import { eventually, fileCleanup, makeKey, run, tempDir, type RunResult } from '../helpers/env.ts';
import { FERRY, spawnAgent, spawnFerry, type FerryProcess } from '../helpers/fixture.ts';
import { connectThroughProxy, httpProxySkipReason, startHttpProxy, type HttpProxy } from '../helpers/http-proxy.ts';
import {
  assertInsideTestNet, relayKeyLineOf, startDeviceSshd, createTopology, droppedOutboundPackets, droppedPackets, firewallDeviceOutbound, inNs, must, netnsSkipReason, tcpProbe, type Topology,
} from '../helpers/netns.ts';
import { sshSetup, type SshSetup } from '../helpers/ssh-client.ts';

const skip = netnsSkipReason() || httpProxySkipReason();
const suite = fileCleanup(after);

/** The relay's SSH and HTTPS ports inside its own namespace: nothing else listens there, so fixed ports are safe. */
const RELAY_SSH_PORT = 2222;
const RELAY_HTTPS_PORT = 8443;
/** The proxy without a password, and the one that demands one. */
const PROXY_PORT = 3128;
const AUTH_PROXY_PORT = 3129;
/** How long a direct connection attempt may hang before it counts as dropped. */
const PROBE_MS = 1_500;
/** The agent's fallback stagger (3 s) plus a TLS and an SSH handshake, with room for a slow machine. */
const LINK_UP_MS = 20_000;
/** How long a link may take to come back once the proxy is back (the agent's backoff, bounded). */
const RELINK_MS = 30_000;
/** What scp copies through the wss link. */
const COPY_BYTES = 100 * 1024 * 1024;
const COPY_TIMEOUT_MS = 180_000;

/** The proxy's basic-auth credentials; the password is made per run, so no log can hold it by chance. */
const PROXY_USER = 'ferry';
const PROXY_PASSWORD = randomBytes(12).toString('hex');

let topo: Topology;
let op: SshSetup;
let sshdPort: number;
let relayDataDir: string;
let proxy: HttpProxy;
let authProxy: HttpProxy;
/** The wss endpoint as the relay advertises it and the agent logs it. */
let wssEndpoint: string;
/** The agent linked through `proxy` (set by the enrolment test). */
let cam: FerryProcess | undefined;

before(async () => {
  if (skip) return;
  const dir = tempDir(suite);
  topo = await createTopology(suite, `px${process.pid}`);
  wssEndpoint = `wss://${topo.relayToDevice}:${RELAY_HTTPS_PORT}/v1/agent`;
  // The device may dial its two proxies and nothing else: not the relay's SSH or HTTPS port on
  // the same address, not the operator namespace.
  await firewallDeviceOutbound(topo.device, [{ host: topo.relayToDevice, port: PROXY_PORT }, { host: topo.relayToDevice, port: AUTH_PROXY_PORT }]);

  const admin = makeKey(dir, 'admin_key');
  relayDataDir = join(dir, 'relay');
  const relay = spawnFerry(suite, ['relay', '--data-dir', relayDataDir,
    '--ssh-listen', `0.0.0.0:${RELAY_SSH_PORT}`, '--public-address', `${topo.relayToDevice}:${RELAY_SSH_PORT}`,
    '--http-listen', `0.0.0.0:${RELAY_HTTPS_PORT}`, '--public-url', `https://${topo.relayToDevice}:${RELAY_HTTPS_PORT}`,
    '--admin-key', `${admin.path}.pub`], {}, [...inNs(topo.relay), process.execPath, FERRY]);
  await relay.waitFor(/listening on 0\.0\.0\.0:2222/);
  await relay.waitFor(/\(listening on 0\.0\.0\.0:8443\)/);

  // The proxies run beside the relay, on its device-side address; they may tunnel to the HTTPS
  // port (and 443, tinyproxy's stock one), never to the SSH port.
  const common = { dir, host: topo.relayToDevice, connectPorts: [RELAY_HTTPS_PORT], allow: ['198.51.100.0/24'], ns: topo.relay };
  proxy = await startHttpProxy(suite, { ...common, port: PROXY_PORT });
  authProxy = await startHttpProxy(suite, { ...common, port: AUTH_PROXY_PORT, basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD } });

  // The device's own sshd, on its loopback only.
  const info = await startDeviceSshd(suite, join(dir, 'sshd'), topo.device, `${admin.path}.pub`);
  sshdPort = info.port;

  op = sshSetup(dir, {
    port: RELAY_SSH_PORT, relayHost: topo.relayToOperator, user: 'admin', keyPath: admin.path,
    relayKeyLine: relayKeyLineOf(relayDataDir),
    deviceUser: info.user, deviceKeys: { '*': info.hostKeyLine }, connectTimeout: 5,
  });
});

/** OpenSSH from the operator namespace, with the file's fixed option list. */
function operatorSsh(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return run('ip', ['netns', 'exec', topo.operator, 'ssh', '-F', op.config, ...args], { timeoutMs });
}

/** `ferry token create --name NAME --approve` on the relay host. */
async function createToken(name: string): Promise<string> {
  return (await must('ip', ['netns', 'exec', topo.relay, process.execPath, FERRY, 'token', 'create', '--name', name, '--approve', '--data-dir', relayDataDir])).stdout.trim();
}

/** The relay's view of device `name`, from `ferry devices --json` on the relay host. */
async function deviceRow(name: string): Promise<Record<string, unknown> | undefined> {
  const r = await must('ip', ['netns', 'exec', topo.relay, process.execPath, FERRY, 'devices', '--json', '--data-dir', relayDataDir]);
  return (JSON.parse(r.stdout) as Record<string, unknown>[]).find((x) => x.name === name);
}

/** The agent's "link up" log lines so far. */
function linkUps(agent: FerryProcess): string[] {
  return agent.stderr().split('\n').filter((l) => l.includes('"msg":"link up"'));
}

function linkDowns(agent: FerryProcess): string[] {
  return agent.stderr().split('\n').filter((l) => l.includes('"msg":"link down"'));
}

function needCam(): FerryProcess {
  assert.ok(cam, 'the agent "cam" did not link through the proxy (see the enrolment test)');
  return cam;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

test('the namespaces use only 198.51.100.0/24 and loopback, with no route out', { skip }, async () => {
  await assertInsideTestNet(topo);
});

test('the device reaches nothing but the proxy: the relay\'s SSH and HTTPS ports are dropped, the proxy tunnels to HTTPS only', { skip }, async () => {
  const droppedBefore = await droppedOutboundPackets(topo.device);
  const [toSsh, toHttps, toOperator] = await Promise.all([
    tcpProbe(topo.device, topo.relayToDevice, RELAY_SSH_PORT, PROBE_MS),
    tcpProbe(topo.device, topo.relayToDevice, RELAY_HTTPS_PORT, PROBE_MS),
    tcpProbe(topo.device, topo.relayToOperator, RELAY_SSH_PORT, PROBE_MS),
  ]);
  assert.equal(toSsh, 'timeout', `the relay's SSH port ${RELAY_SSH_PORT} should be silently dropped for the device`);
  assert.equal(toHttps, 'timeout', `the relay's HTTPS port ${RELAY_HTTPS_PORT} should be silently dropped for the device`);
  assert.equal(toOperator, 'timeout', "the relay's operator-side address should be dropped for the device too");
  const dropped = await droppedOutboundPackets(topo.device);
  assert.ok(dropped > droppedBefore, `the device firewall should count the dropped SYNs (before ${droppedBefore}, after ${dropped})`);

  // Inbound too: a connection from the operator namespace to the device is dropped, not refused.
  const inboundBefore = await droppedPackets(topo.device);
  assert.equal(await tcpProbe(topo.operator, topo.deviceAddress, 22, PROBE_MS), 'timeout', 'the device should drop inbound connections');
  assert.ok(await droppedPackets(topo.device) > inboundBefore, 'the device firewall should count the dropped inbound SYNs');

  // Controls: the relay listens on both ports on the very address the device was refused, the
  // operator reaches its SSH port, and the device reaches the proxy.
  assert.equal(await tcpProbe(topo.relay, topo.relayToDevice, RELAY_SSH_PORT, PROBE_MS), 'connected', "the relay's SSH port answers in its own namespace");
  assert.equal(await tcpProbe(topo.relay, topo.relayToDevice, RELAY_HTTPS_PORT, PROBE_MS), 'connected', "the relay's HTTPS port answers in its own namespace");
  assert.equal(await tcpProbe(topo.operator, topo.relayToOperator, RELAY_SSH_PORT, PROBE_MS), 'connected', 'the operator reaches the relay');
  assert.equal(await tcpProbe(topo.device, proxy.host, proxy.port, PROBE_MS), 'connected', 'the device reaches the proxy');

  // Through the proxy: CONNECT to the HTTPS port works, to the SSH port it is refused; the
  // password-protected proxy wants its password, and takes the right one.
  const https = `${topo.relayToDevice}:${RELAY_HTTPS_PORT}`;
  assert.equal(await connectThroughProxy(topo.device, proxy, https, null, PROBE_MS * 2), '200', 'the proxy tunnels to the relay\'s HTTPS port');
  assert.equal(await connectThroughProxy(topo.device, proxy, `${topo.relayToDevice}:${RELAY_SSH_PORT}`, null, PROBE_MS * 2), '403', 'the proxy refuses to tunnel to the SSH port');
  assert.equal(await connectThroughProxy(topo.device, authProxy, https, null, PROBE_MS * 2), '407', 'the second proxy demands a password');
  // tinyproxy 1.11 answers a wrong password with 401, a missing one with 407.
  assert.match(await connectThroughProxy(topo.device, authProxy, https, `${PROXY_USER}:wrong`, PROBE_MS * 2), /^40[17]$/, 'the second proxy refuses a wrong password');
  assert.equal(await connectThroughProxy(topo.device, authProxy, https, `${PROXY_USER}:${PROXY_PASSWORD}`, PROBE_MS * 2), '200', 'the second proxy takes the right one');
});

test('a token names the SSH endpoint and then the wss endpoint, and pins the self-signed TLS key', { skip }, async () => {
  const decoded = decodeToken(await createToken('probe'));
  assert.ok('claims' in decoded, `the token does not decode: ${'problem' in decoded ? decoded.problem : ''}`);
  assert.deepEqual(decoded.claims.endpoints, [`${topo.relayToDevice}:${RELAY_SSH_PORT}`, wssEndpoint]);
  assert.match(decoded.claims.tlsPin ?? '', /^sha256\/\/[A-Za-z0-9+/]{43}=$/, 'a relay with its own certificate pins its key in the token');
});

test('with --proxy, the agent enrols and links over wss through the proxy, and the relay shows it online', { skip }, async () => {
  const dir = tempDir(suite);
  const token = await createToken('cam');
  // What the proxy logs from here on is the agent's doing (the controls asked it for :2222).
  const proxyLogFrom = proxy.log().length;
  // Nothing but the token and the proxy: the token's SSH endpoint is dropped, so the agent
  // falls back to its wss endpoint on its own.
  cam = await spawnAgent(suite, join(dir, 'agent'), ['--token', token, '--proxy', proxy.url, '--ssh-target', `127.0.0.1:${sshdPort}`],
    [...inNs(topo.device), process.execPath, FERRY]);
  const ups = linkUps(cam);
  assert.equal(ups.length, 1, cam.stderr());
  assert.ok(ups[0]!.includes(wssEndpoint), `the link should be up over ${wssEndpoint}: ${ups[0]}`);

  // The proxy carried it, to the HTTPS port; the proxy is for wss endpoints only, so the agent
  // never asked it for the SSH port.
  const agentProxyLog = proxy.log().slice(proxyLogFrom);
  assert.match(agentProxyLog, new RegExp(`CONNECT ${topo.relayToDevice.replace(/\./g, '\\.')}:${RELAY_HTTPS_PORT} `));
  assert.doesNotMatch(agentProxyLog, new RegExp(`CONNECT [^ ]*:${RELAY_SSH_PORT} `));

  const d = await eventually(async () => { const row = await deviceRow('cam'); return row?.online === true ? row : null; }, 10_000, 'the relay to show cam online');
  assert.equal(d.status, 'approved');
  // The relay sees the proxy's connection: the TLS inside the tunnel carries no client address.
  assert.equal(d.remoteAddress, proxy.host);
});

test('ssh -J through the relay runs a command on the device behind the proxy and returns its exit code', { skip }, async () => {
  needCam();
  const r = await operatorSsh(['-J', 'relay', 'cam', `echo out; echo err >&2; ip -4 -o addr show; exit 7`]);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /^out\n/);
  assert.equal(r.stderr, 'err\n');
  // The command ran inside the device namespace.
  assert.match(r.stdout, new RegExp(`inet ${topo.deviceAddress.replace(/\./g, '\\.')}/30`));

  const ok = await operatorSsh(['-J', 'relay', 'cam', 'true']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('scp through -J copies 100 MiB to the device byte-identical over the wss link', { skip, timeout: COPY_TIMEOUT_MS * 2 }, async () => {
  needCam();
  const dir = tempDir(suite);
  const src = join(dir, 'payload.bin');
  writeFileSync(src, randomBytes(COPY_BYTES));
  const want = await sha256File(src);
  // The namespaces share one file system: the copy lands in its own directory, and its hash is
  // taken on the device, by the device's shell.
  const destDir = join(dir, 'on-device');
  mkdirSync(destDir);
  const dest = join(destDir, 'payload.bin');
  const started = Date.now();
  const cp = await run('ip', ['netns', 'exec', topo.operator, 'scp', '-F', op.config, '-q', src, `cam:${dest}`], { timeoutMs: COPY_TIMEOUT_MS });
  assert.equal(cp.code, 0, `scp failed after ${Date.now() - started} ms: ${cp.stderr}`);
  const sum = await operatorSsh(['-J', 'relay', 'cam', `sha256sum ${dest}; stat -c %s ${dest}`]);
  assert.equal(sum.code, 0, sum.stderr);
  const [hashLine, sizeLine] = sum.stdout.trim().split('\n');
  assert.equal(Number(sizeLine), COPY_BYTES, 'the copy has every byte');
  assert.equal(hashLine!.split(/\s+/)[0], want, 'the copy is byte-identical');
});

test('when the proxy stops the link goes down, and when it is back the agent links again by itself', { skip }, async () => {
  const agent = needCam();
  const upsBefore = linkUps(agent).length;
  const downsBefore = linkDowns(agent).length;

  await proxy.stop();
  // tinyproxy closes the tunnels it holds as it exits, so the agent hears of it at once.
  await eventually(() => linkDowns(agent).length > downsBefore, 30_000, "the agent to log link down once the proxy stopped");
  await eventually(async () => (await deviceRow('cam'))?.online === false, 30_000, 'the relay to show cam offline');
  const unreachable = await operatorSsh(['-J', 'relay', 'cam', 'true']);
  assert.notEqual(unreachable.code, 0, 'no way to the device while its only way out is down');

  await proxy.start();
  const back = Date.now();
  await eventually(() => linkUps(agent).length > upsBefore, RELINK_MS, `the agent to link again within ${RELINK_MS} ms of the proxy coming back`);
  assert.ok(linkUps(agent).at(-1)!.includes(wssEndpoint), `linked again over ${wssEndpoint}: ${linkUps(agent).at(-1)}`);
  await eventually(async () => (await deviceRow('cam'))?.online === true, 10_000, 'the relay to show cam online again');

  const r = await operatorSsh(['-J', 'relay', 'cam', 'echo back']);
  assert.equal(r.code, 0, `${r.stderr} (linked again ${Date.now() - back} ms ago)`);
  assert.equal(r.stdout, 'back\n');
});

test('with TCP :2222 dropped, an agent given "HOST:2222,wss://HOST:8443/" falls back to wss through the HTTPS_PROXY it is given, and no log holds the proxy password', { skip }, async () => {
  const dir = tempDir(suite);
  const token = await createToken('fallback');
  const relayList = `${topo.relayToDevice}:${RELAY_SSH_PORT},wss://${topo.relayToDevice}:${RELAY_HTTPS_PORT}/`;
  const authProxyLogFrom = authProxy.log().length;
  const started = Date.now();
  // No flag names a transport or the proxy: the endpoint list and the environment say it all.
  const agent = spawnFerry(suite, ['agent', '--state-dir', join(dir, 'agent'), '--token', token, '--relay', relayList, '--ssh-target', `127.0.0.1:${sshdPort}`],
    { HTTPS_PROXY: authProxy.url }, [...inNs(topo.device), process.execPath, FERRY]);
  await agent.waitFor(/"msg":"link up"/, LINK_UP_MS);
  const tookMs = Date.now() - started;
  const up = linkUps(agent)[0]!;
  assert.ok(up.includes(wssEndpoint), `the link should be up over ${wssEndpoint}: ${up}`);
  // The SSH endpoint comes first in the list, so the wss one starts only after its 3 s stagger.
  assert.ok(tookMs >= 3_000, `linked after ${tookMs} ms: the TCP endpoint should have been tried first, for 3 s`);
  // The controls tunnelled through this proxy too: only what it logged since counts.
  assert.match(authProxy.log().slice(authProxyLogFrom), new RegExp(`CONNECT ${topo.relayToDevice.replace(/\./g, '\\.')}:${RELAY_HTTPS_PORT} `));

  const r = await operatorSsh(['-J', 'relay', 'fallback', 'echo via wss']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'via wss\n');

  // The password, as typed, inside the URL, and in the header the agent sent.
  const forms = [PROXY_PASSWORD, Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64'), Buffer.from(PROXY_PASSWORD).toString('base64')];
  for (const [what, text] of [['the agent\'s log', agent.stdout() + agent.stderr()], ["the proxy's log", authProxy.log()]] as const) {
    for (const f of forms) assert.ok(!text.includes(f), `${what} holds the proxy password (as ${f === PROXY_PASSWORD ? 'plain text' : 'base64'})`);
  }
});
