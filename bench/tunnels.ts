/**
 * The two tunnels the throughput, round-trip and new-connection scenarios compare, each
 * ending in a local port that the load generator connects to:
 *
 *   ferry:   load → ssh -L → ferry relay → ferry agent link → device service
 *   OpenSSH: load → ssh -L → sshd (direct-tcpip to its own -R port) → ssh -N -R → device service
 *
 * Both have the same two encrypted hops with the same cipher, and the operator side is the
 * same `ssh -L` program in both, so the difference is relay + device link.
 */
import { join } from 'node:path';
import { startOpensshRelay, startReverseTunnel } from './baseline-openssh.ts';
import type { BenchContext } from './context.ts';
import { startFerryAgent, startFerryRelay } from './ferry-setup.ts';
import { freePort, until } from './net-probes.ts';
import { startChild } from './processes.ts';
import { writeSshConfig } from './ssh-config.ts';

/** A ready tunnel: connect to 127.0.0.1:localPort to reach the device's service. */
export interface Tunnel {
  system: 'ferry' | 'openssh';
  localPort: number;
  /** The processes of the path, for CPU accounting (`tree`: count the process's descendants too). */
  processes: { label: string; pid: number; tree: boolean }[];
}

const READY_MS = 20_000;

/** Starts ssh -L to `dest` through `relayAlias` and waits until `probe` passes through it. */
async function operatorForward(ctx: BenchContext, sshConfig: string, relayAlias: string, dest: string, probe: (port: number) => Promise<boolean>): Promise<{ localPort: number; pid: number }> {
  const localPort = await freePort();
  const ssh = startChild(ctx.scope, `ssh -L ${relayAlias}`, 'ssh', ['-F', sshConfig, '-N', '-L', `127.0.0.1:${localPort}:${dest}`, relayAlias]);
  await until(async () => {
    if (!ssh.running) throw new Error(`ssh -L exited: ${ssh.output()}`);
    return probe(localPort);
  }, READY_MS, `the ${relayAlias} tunnel to answer`);
  return { localPort, pid: ssh.pid };
}

/**
 * A ferry relay and agent (device `name`, target `targetPort`), and ssh -L to it. `link`:
 * the agent's link, SSH over TCP (the default) or inside a WebSocket on the relay's HTTPS listener.
 */
export async function ferryTunnel(ctx: BenchContext, name: string, targetPort: number, probe: (port: number) => Promise<boolean>, link: 'tcp' | 'wss' = 'tcp'): Promise<Tunnel> {
  const dir = join(ctx.dir, `ferry-${name}`);
  const relay = await startFerryRelay(ctx.scope, { dataDir: join(dir, 'relay'), adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir, http: link === 'wss' });
  const agent = await startFerryAgent(ctx.scope, dir, relay, name, targetPort, ctx.profileDir, link === 'wss' ? `${relay.httpUrl!.replace(/^https:/, 'wss:')}/` : undefined);
  const config = writeSshConfig(ctx.dir, `ferry-${name}`, ctx.operatorKey, [{ alias: 'ferry-relay', hostName: '127.0.0.1', port: relay.port, user: 'admin' }],
    [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`]);
  const op = await operatorForward(ctx, config, 'ferry-relay', `${name}:22`, probe);
  return {
    system: 'ferry', localPort: op.localPort,
    processes: [{ label: 'ssh -L', pid: op.pid, tree: false }, { label: 'relay', pid: relay.child.pid, tree: false }, { label: 'agent', pid: agent.pid, tree: false }],
  };
}

/** A baseline sshd, ssh -N -R from the device side to `targetPort`, and ssh -L to the -R port. */
export async function opensshTunnel(ctx: BenchContext, name: string, targetPort: number, probe: (port: number) => Promise<boolean>): Promise<Tunnel> {
  const relay = await startOpensshRelay(ctx.scope, join(ctx.dir, `openssh-${name}`), [ctx.operatorKey.pub, ctx.deviceKey.pub]);
  const known = [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`];
  const hosts = [{ alias: 'openssh-relay', hostName: '127.0.0.1', port: relay.port, user: 'root' }];
  const deviceConfig = writeSshConfig(ctx.dir, `openssh-${name}-device`, ctx.deviceKey, hosts, known);
  const operatorConfig = writeSshConfig(ctx.dir, `openssh-${name}-operator`, ctx.operatorKey, hosts, known);
  const remotePort = await freePort();
  const reverse = startReverseTunnel(ctx.scope, `ssh -R ${name}`, deviceConfig, 'openssh-relay', remotePort, targetPort);
  await until(async () => {
    if (!reverse.running) throw new Error(`ssh -R exited: ${reverse.output()}`);
    return probe(remotePort);
  }, READY_MS, 'the reverse tunnel to answer');
  const op = await operatorForward(ctx, operatorConfig, 'openssh-relay', `127.0.0.1:${remotePort}`, probe);
  return {
    system: 'openssh', localPort: op.localPort,
    processes: [{ label: 'ssh -L', pid: op.pid, tree: false }, { label: 'sshd (both sessions)', pid: relay.listener.pid, tree: true }, { label: 'ssh -R', pid: reverse.pid, tree: false }],
  };
}
