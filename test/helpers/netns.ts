/**
 * Network namespaces for system tests: a relay namespace routing between a device namespace
 * and an operator namespace, addressed only from 198.51.100.0/24 (TEST-NET-2), with no route
 * anywhere else. Needs root, `ip` (iproute2) and, for firewalls, `nft` (nftables).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { ROOT, spawnFerry } from './fixture.ts';
import { missing, run, type RunResult } from './env.ts';

/** Why namespace tests cannot run here, or false when they can. */
export function netnsSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root: creates network namespaces, veth links and nftables rules (CI runs the system tests as root)';
  return missing('ip', 'iproute2') || missing('nft', 'nftables');
}

/** Runs a program and throws (with its output) when it fails: for setup steps that must work. */
export async function must(cmd: string, args: string[], input?: string): Promise<RunResult> {
  const r = await run(cmd, args, { timeoutMs: 15_000, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`);
  return r;
}

/** The argv prefix that runs a program inside namespace `ns`. */
export function inNs(ns: string): string[] {
  return ['ip', 'netns', 'exec', ns];
}

/** The three namespaces and their addresses. */
export interface Topology {
  relay: string;
  device: string;
  operator: string;
  /** The relay's address on the device link, and the device's. */
  relayToDevice: string;
  deviceAddress: string;
  /** The relay's address on the operator link, and the operator's. */
  relayToOperator: string;
  operatorAddress: string;
}

/** The only range this file ever configures. */
export const TEST_NET_2 = '198.51.100.';

/**
 * Creates the namespaces (named after `tag`, unique per run), two veth links through the relay
 * namespace, and routes for 198.51.100.0/24 only. IPv6 is off in every namespace, so that no
 * link-local address appears either. Registers removal (every process left inside is killed)
 * with `t` before creating anything.
 */
export async function createTopology(t: { after(fn: () => unknown): void }, tag: string): Promise<Topology> {
  const topo: Topology = {
    relay: `ferry-${tag}-relay`, device: `ferry-${tag}-device`, operator: `ferry-${tag}-operator`,
    relayToDevice: '198.51.100.1', deviceAddress: '198.51.100.2', relayToOperator: '198.51.100.5', operatorAddress: '198.51.100.6',
  };
  const namespaces = [topo.relay, topo.device, topo.operator];
  t.after(() => destroyNamespaces(namespaces));
  // veth names are at most 15 characters.
  const short = tag.replace(/[^a-z0-9]/gi, '').slice(-9);
  const [rd, dr, ro, or] = [`fd${short}a`, `fd${short}b`, `fo${short}a`, `fo${short}b`];
  for (const ns of namespaces) {
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await must('ip', ['link', 'add', rd, 'netns', topo.relay, 'type', 'veth', 'peer', 'name', dr, 'netns', topo.device]);
  await must('ip', ['link', 'add', ro, 'netns', topo.relay, 'type', 'veth', 'peer', 'name', or, 'netns', topo.operator]);
  const addresses: [string, string, string][] = [
    [topo.relay, rd, `${topo.relayToDevice}/30`], [topo.device, dr, `${topo.deviceAddress}/30`],
    [topo.relay, ro, `${topo.relayToOperator}/30`], [topo.operator, or, `${topo.operatorAddress}/30`],
  ];
  for (const [ns, dev, cidr] of addresses) {
    await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    await must('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
    await must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  // The relay namespace forwards between its two links, so that the operator could reach the
  // device directly if the device's firewall let it. Nothing has a default route.
  await must('ip', ['netns', 'exec', topo.relay, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  await must('ip', ['-n', topo.device, 'route', 'add', '198.51.100.0/24', 'via', topo.relayToDevice]);
  await must('ip', ['-n', topo.operator, 'route', 'add', '198.51.100.0/24', 'via', topo.relayToOperator]);
  return topo;
}

/** Kills every process still inside the namespaces (by pid), then deletes them. Never throws. */
export async function destroyNamespaces(namespaces: string[]): Promise<void> {
  for (const ns of namespaces) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0) ?? [];
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'ferry_test'], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Every IPv4/IPv6 address configured in `ns`, and its routes (all tables). */
export async function addressesAndRoutes(ns: string): Promise<{ addresses: string[]; routes: string[] }> {
  const addr = JSON.parse((await must('ip', ['-n', ns, '-j', 'addr', 'show'])).stdout) as { addr_info?: { local: string }[] }[];
  const addresses = addr.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
  const routes: string[] = [];
  for (const family of ['-4', '-6']) {
    const r = await run('ip', ['-n', ns, family, 'route', 'show', 'table', 'all'], { timeoutMs: 15_000 });
    routes.push(...r.stdout.split('\n').filter(Boolean).map((l) => `${family} ${l}`));
  }
  return { addresses, routes };
}

/** The device's inbound rules, for both firewalls below: policy drop, loopback and replies accepted, the rest counted. */
const INPUT_CHAIN = [
  '  chain input {',
  '    type filter hook input priority 0; policy drop;',
  '    iif lo accept',
  '    ct state established,related accept',
  '    counter comment "dropped"',
  '  }',
];

/**
 * The device's firewall: inbound connections are dropped (policy drop); only loopback and
 * replies to connections the device made are accepted. The last rule counts what is dropped.
 */
export async function firewallDevice(ns: string): Promise<void> {
  await must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], [
    'table inet ferry_test {',
    ...INPUT_CHAIN,
    '}',
    '',
  ].join('\n'));
}

/** A TCP destination a firewall lets the device dial. */
export interface Destination { host: string; port: number }

/**
 * A stricter device firewall, for a network that lets out nothing but its HTTP proxy: inbound
 * as firewallDevice (policy drop; loopback and replies accepted), and outbound too, policy drop,
 * accepting only loopback, new TCP connections to `allowed` (IPv4 address and port), and the
 * rest of connections already accepted. Every other packet out (TCP to any other address or
 * port, UDP, ICMP) is dropped and counted, so the device reaches nothing but `allowed`.
 */
export async function firewallDeviceOutbound(ns: string, allowed: Destination[]): Promise<void> {
  if (allowed.length === 0) throw new Error('firewallDeviceOutbound: name at least one destination the device may dial');
  for (const d of allowed) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(d.host) || !Number.isInteger(d.port)) throw new Error(`firewallDeviceOutbound: ${d.host}:${d.port} is not IPv4:PORT`);
  }
  await must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], [
    'table inet ferry_test {',
    ...INPUT_CHAIN,
    '  chain output {',
    '    type filter hook output priority 0; policy drop;',
    '    oif lo accept',
    '    ct state established,related accept',
    ...allowed.map((d) => `    ip daddr ${d.host} tcp dport ${d.port} ct state new accept`),
    '    counter comment "dropped"',
    '  }',
    '}',
    '',
  ].join('\n'));
}

/** Packets firewallDeviceOutbound has dropped on their way out of the device so far. */
export async function droppedOutboundPackets(ns: string): Promise<number> {
  const r = await must('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', 'inet', 'ferry_test', 'output']);
  const m = /counter packets (\d+) bytes \d+ comment "dropped"/.exec(r.stdout);
  if (!m) throw new Error(`no drop counter in:\n${r.stdout}`);
  return Number(m[1]);
}

/** The network of `ns` goes silent: every packet in or out, except on loopback, is dropped (no FIN, no RST). */
export async function dropAllTraffic(ns: string): Promise<void> {
  await must('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], [
    'table inet ferry_test_outage {',
    '  chain in { type filter hook input priority -10; policy accept; iifname != "lo" drop; }',
    '  chain out { type filter hook output priority -10; policy accept; oifname != "lo" drop; }',
    '}',
    '',
  ].join('\n'));
}

/** Ends what dropAllTraffic started. */
export async function restoreTraffic(ns: string): Promise<void> {
  await must('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'ferry_test_outage']);
}

/** Packets the device firewall has dropped so far. */
export async function droppedPackets(ns: string): Promise<number> {
  const r = await must('ip', ['netns', 'exec', ns, 'nft', 'list', 'chain', 'inet', 'ferry_test', 'input']);
  const m = /counter packets (\d+) bytes \d+ comment "dropped"/.exec(r.stdout);
  if (!m) throw new Error(`no drop counter in:\n${r.stdout}`);
  return Number(m[1]);
}

/** What a TCP connect attempt ended with. */
export type ProbeResult = 'connected' | 'refused' | 'timeout' | string;

const PROBE = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
const done = (r) => { process.stdout.write(r); s.destroy(); process.exit(0); };
const timer = setTimeout(() => done('timeout'), Number(ms));
s.on('connect', () => { clearTimeout(timer); done('connected'); });
s.on('error', (e) => { clearTimeout(timer); done(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)); });
`;

/** Tries a TCP connection from inside `ns`, giving up after `timeoutMs`. */
export async function tcpProbe(ns: string, host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const r = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', PROBE, host, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A node one-liner that listens on HOST:PORT, answers every connection with 'hello', and prints 'listening'. */
export const HELLO_LISTENER = `
const [host, port] = process.argv.slice(1);
require('node:net').createServer((s) => s.end('hello\\n')).listen(Number(port), host, () => console.log('listening'));
`;

/** Asserts that every namespace of `topo` has only loopback and TEST-NET-2 addresses, and no route out of TEST-NET-2. */
export async function assertInsideTestNet(topo: Topology): Promise<void> {
  for (const ns of [topo.relay, topo.device, topo.operator]) {
    const { addresses, routes } = await addressesAndRoutes(ns);
    for (const a of addresses) assert.ok(a === '127.0.0.1' || a.startsWith(TEST_NET_2), `${ns} has address ${a}`);
    assert.ok(addresses.some((a) => a.startsWith(TEST_NET_2)), `${ns} has a TEST-NET-2 address`);
    for (const r of routes) {
      assert.doesNotMatch(r, /^-\d default/, `${ns} must have no default route: ${r}`);
      // Every route is for loopback/local/broadcast bookkeeping or for TEST-NET-2.
      assert.match(r, /198\.51\.100\.|127\.|dev lo/, `${ns} has a route that leaves TEST-NET-2: ${r}`);
    }
  }
}

/** The device's own sshd as the launcher reports it. */
export interface DeviceSshd { port: number; hostKeyLine: string; user: string }

/**
 * Starts a throwaway sshd inside namespace `ns`, on its loopback only, accepting the public key
 * in `authorizedKeyFile`; stopped (SIGTERM: the launcher stops its sshd) with `t`.
 */
export async function startDeviceSshd(t: { after(fn: () => unknown): void }, dir: string, ns: string, authorizedKeyFile: string): Promise<DeviceSshd> {
  const sshd = spawnFerry(t, [dir, authorizedKeyFile], {}, [...inNs(ns), process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/throwaway-sshd-launcher.ts')]);
  // Whatever survives is killed with the namespace.
  t.after(() => sshd.stop('SIGTERM'));
  return JSON.parse((await sshd.waitFor(/^\{.*"port".*\}$/m))[0]) as DeviceSshd;
}

/** The relay's SSH host key as a known_hosts key line, read from its data dir. */
export function relayKeyLineOf(dataDir: string): string {
  const hostKey = ssh2.utils.parseKey(readFileSync(join(dataDir, 'ssh_host_ed25519_key')));
  if (hostKey instanceof Error || Array.isArray(hostKey)) throw new Error('cannot read the relay host key');
  return `ssh-ed25519 ${hostKey.getPublicSSH().toString('base64')}`;
}
