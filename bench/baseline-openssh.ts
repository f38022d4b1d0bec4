/**
 * The OpenSSH baseline: a throwaway sshd on a loopback port plays the relay (its own config
 * in a temp dir; AllowTcpForwarding yes, GatewayPorts no), the "device" keeps `ssh -N -R`
 * (optionally under autossh) to it, and operators go through it with `ssh -L` or `ssh -J`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { descendants, startChild, type Child, type Scope } from './processes.ts';
import { freePort } from './net-probes.ts';

const SSHD = '/usr/sbin/sshd';
const SSHD_START_MS = 10_000;

/** A running relay sshd. */
export interface OpensshRelay {
  readonly port: number;
  readonly hostKeyLine: string;
  /** The listener process (sessions are its descendants). */
  readonly listener: Child;
  /** Private memory (Private_Clean + Private_Dirty, KiB) of the listener and every session process. */
  privateKiB(): number;
  /** SIGKILL to the listener and every session: the relay host crashed. */
  kill9(): Promise<void>;
  /** Starts a new listener on the same port with the same keys and config. */
  restart(): Promise<void>;
}

/** Private memory of one process from /proc/PID/smaps_rollup, in KiB (0 when it is gone). */
export function privateKiBOf(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return field('Private_Clean') + field('Private_Dirty');
  } catch {
    return 0;
  }
}

/** Starts sshd in `dir`, listening on `listen`, as a relay that accepts `authorizedKeys` for root (the user running the benchmark). */
export async function startOpensshRelay(scope: Scope, dir: string, authorizedKeys: string[], listen = '127.0.0.1'): Promise<OpensshRelay> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install openssh-server`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-openssh-relay', '-f', hostKey]);
  const hostKeyLine = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(dir, 'authorized_keys'), authorizedKeys.join('\n') + '\n', { mode: 0o600 });
  // sshd refuses to start as root without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`, `ListenAddress ${listen}`, `HostKey ${hostKey}`, 'PidFile none',
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'UseDNS no',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password',
    // The classic reverse-tunnel relay: forwarding on, remote forwards bound to loopback only.
    'AllowTcpForwarding yes', 'GatewayPorts no', 'X11Forwarding no',
    // The same keepalive as ferry's relay (20 s × 3): how a dead tunnel is noticed.
    'ClientAliveInterval 20', 'ClientAliveCountMax 3',
    // Room for the idle-device and recovery runs, which open many sessions at once.
    'MaxStartups 1000:30:2000', 'MaxSessions 100', 'LogLevel INFO', '',
  ].join('\n'));

  const start = async (): Promise<Child> => {
    const child = startChild(scope, 'openssh-relay', SSHD, ['-D', '-e', '-f', config]);
    await child.waitFor(/Server listening on/, SSHD_START_MS);
    return child;
  };
  let listener = await start();
  return {
    port, hostKeyLine,
    get listener() { return listener; },
    privateKiB: () => [listener.pid, ...descendants(listener.pid)].reduce((sum, pid) => sum + privateKiBOf(pid), 0),
    kill9: () => listener.kill9(),
    async restart() { listener = await start(); },
  };
}

/**
 * `ssh -N -R RPORT:127.0.0.1:TARGET relay` from the device side, under autossh when asked
 * (AUTOSSH_GATETIME=0 so that it retries even when the first attempt fails; -M 0: no
 * monitor port, ServerAlive in the ssh_config notices a dead link). `prefix` runs it under
 * another program (`ip netns exec NS`).
 */
export function startReverseTunnel(scope: Scope, name: string, sshConfig: string, relayAlias: string, remotePort: number, targetPort: number, autossh = false, extraSshArgs: string[] = [], prefix: string[] = []): Child {
  const sshArgs = ['-F', sshConfig, ...extraSshArgs, '-N', '-R', `${remotePort}:127.0.0.1:${targetPort}`, relayAlias];
  const argv = autossh ? [...prefix, 'autossh', '-M', '0', ...sshArgs] : [...prefix, 'ssh', ...sshArgs];
  return startChild(scope, name, argv[0]!, argv.slice(1), autossh ? { env: { AUTOSSH_GATETIME: '0' } } : {});
}

/** Whether autossh is on this machine. */
export function hasAutossh(): boolean {
  try {
    execFileSync('autossh', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
