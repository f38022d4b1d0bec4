/**
 * A device's network in a namespace of its own, for the network-drop scenario: one veth link
 * to the host, 198.18.0.0/30 (RFC 2544's range for benchmarks), no other route, IPv6 off.
 * `drop()` makes the device's network go silent (nftables drops every packet in and out
 * except on loopback, so TCP sees neither FIN nor RST), `restore()` brings it back.
 * Needs root, `ip` (iproute2) and `nft` (nftables).
 */
import { execFileSync } from 'node:child_process';
import { destroyNamespaces, dropAllTraffic, netnsSkipReason, restoreTraffic } from '../test/helpers/netns.ts';
import type { Scope } from './processes.ts';

/** The host's end of the link (where the relays listen) and the device's. */
export const HOST_ADDRESS = '198.18.0.1';
export const DEVICE_ADDRESS = '198.18.0.2';

/** Why the namespace cannot be made here, or null when it can (the system tests' own check). */
export function netnsMissing(): string | null {
  return netnsSkipReason() || null;
}

export interface DeviceNetns {
  readonly name: string;
  /** The argv prefix that runs a program inside the namespace. */
  readonly exec: string[];
  drop(): Promise<void>;
  restore(): Promise<void>;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Creates the namespace and its link; the scope removes both (and kills what runs inside). */
export function createDeviceNetns(scope: Scope, tag: string): DeviceNetns {
  const name = `ferry-bench-${tag}`;
  // veth names are at most 15 characters.
  const hostIf = `fbh${tag}`.slice(0, 15);
  const devIf = `fbd${tag}`.slice(0, 15);
  // Deleting the namespace deletes the veth pair with it.
  scope.defer(() => destroyNamespaces([name]));
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', devIf, 'netns', name]);
  sh('sysctl', ['-qw', `net.ipv6.conf.${hostIf}.disable_ipv6=1`]);
  sh('ip', ['addr', 'add', `${HOST_ADDRESS}/30`, 'dev', hostIf]);
  sh('ip', ['link', 'set', hostIf, 'up']);
  sh('ip', ['-n', name, 'addr', 'add', `${DEVICE_ADDRESS}/30`, 'dev', devIf]);
  sh('ip', ['-n', name, 'link', 'set', devIf, 'up']);
  return { name, exec: ['ip', 'netns', 'exec', name], drop: () => dropAllTraffic(name), restore: () => restoreTraffic(name) };
}
