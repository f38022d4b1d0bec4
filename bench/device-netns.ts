/**
 * A device's network in a namespace of its own, for the network-drop scenario: one veth link
 * to the host, 198.18.0.0/30 (RFC 2544's range for benchmarks), no other route, IPv6 off.
 * `drop()` makes the device's network go silent (nftables drops every packet in and out
 * except on loopback, so TCP sees neither FIN nor RST), `restore()` brings it back.
 * Needs root, `ip` (iproute2) and `nft` (nftables).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { Scope } from './processes.ts';

/** The host's end of the link (where the relays listen) and the device's. */
export const HOST_ADDRESS = '198.18.0.1';
export const DEVICE_ADDRESS = '198.18.0.2';

const DROP_TABLE = 'ferry_bench_drop';

/** Why the namespace cannot be made here, or null when it can. */
export function netnsMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, veth links, nftables)';
  for (const [cmd, flag, pkg] of [['ip', '-V', 'iproute2'], ['nft', '--version', 'nftables']] as const) {
    if (spawnSync(cmd, [flag], { stdio: 'ignore' }).status !== 0) return `needs \`${cmd}\` (apt-get install ${pkg})`;
  }
  return null;
}

export interface DeviceNetns {
  readonly name: string;
  /** The argv prefix that runs a program inside the namespace. */
  readonly exec: string[];
  drop(): void;
  restore(): void;
}

const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], input });

/** Creates the namespace and its link; the scope removes both (and kills what runs inside). */
export function createDeviceNetns(scope: Scope, tag: string): DeviceNetns {
  const name = `ferry-bench-${tag}`;
  // veth names are at most 15 characters.
  const hostIf = `fbh${tag}`.slice(0, 15);
  const devIf = `fbd${tag}`.slice(0, 15);
  scope.defer(() => {
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout?.split('\n').map(Number).filter((n) => n > 0) ?? [];
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    // Deleting the namespace deletes the veth pair with it.
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  });
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', devIf, 'netns', name]);
  sh('sysctl', ['-qw', `net.ipv6.conf.${hostIf}.disable_ipv6=1`]);
  sh('ip', ['addr', 'add', `${HOST_ADDRESS}/30`, 'dev', hostIf]);
  sh('ip', ['link', 'set', hostIf, 'up']);
  sh('ip', ['-n', name, 'addr', 'add', `${DEVICE_ADDRESS}/30`, 'dev', devIf]);
  sh('ip', ['-n', name, 'link', 'set', devIf, 'up']);
  const exec = ['ip', 'netns', 'exec', name];
  return {
    name, exec,
    drop: () => sh('ip', ['netns', 'exec', name, 'nft', '-f', '-'], [
      `table inet ${DROP_TABLE} {`,
      '  chain in { type filter hook input priority -10; policy accept; iifname != "lo" drop; }',
      '  chain out { type filter hook output priority -10; policy accept; oifname != "lo" drop; }',
      '}', '',
    ].join('\n')),
    restore: () => sh('ip', ['netns', 'exec', name, 'nft', 'delete', 'table', 'inet', DROP_TABLE]),
  };
}
