/**
 * Keys and one ssh_config for every OpenSSH client the benchmark runs, ferry's operator side
 * and the baseline alike: pinned host keys, no agent, no user config, and one cipher.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The cipher every OpenSSH hop is held to. ferry's agent link negotiates it too: it is first
 * in the ssh2 client's list (src/protocol/ssh-algorithms.ts) and the client's order decides.
 */
export const CIPHER = 'aes128-gcm@openssh.com';

/** A key pair made by ssh-keygen. */
export interface Key { path: string; pub: string }

export function makeKey(dir: string, name: string): Key {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  return { path, pub: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** One Host block. */
export interface SshHost {
  alias: string;
  hostName: string;
  port: number;
  user: string;
  proxyJump?: string;
  /** The known_hosts name to check the host key under (for devices reached through a jump). */
  hostKeyAlias?: string;
}

/** Writes `dir/NAME.ssh_config` and its known_hosts; returns the config path for `ssh -F`. */
export function writeSshConfig(dir: string, name: string, key: Key, hosts: SshHost[], knownHosts: string[]): string {
  const kh = join(dir, `${name}.known_hosts`);
  writeFileSync(kh, knownHosts.join('\n') + '\n');
  const lines: string[] = [];
  for (const h of hosts) {
    lines.push(`Host ${h.alias}`, `  HostName ${h.hostName}`, `  Port ${h.port}`, `  User ${h.user}`);
    if (h.proxyJump) lines.push(`  ProxyJump ${h.proxyJump}`);
    if (h.hostKeyAlias) lines.push(`  HostKeyAlias ${h.hostKeyAlias}`);
  }
  lines.push('Host *',
    `  IdentityFile ${key.path}`, '  IdentitiesOnly yes', '  IdentityAgent none', `  UserKnownHostsFile ${kh}`,
    '  GlobalKnownHostsFile /dev/null', '  StrictHostKeyChecking yes', '  UpdateHostKeys no', '  BatchMode yes',
    '  ConnectTimeout 10', '  ControlMaster no', '  ControlPath none', '  Compression no', `  Ciphers ${CIPHER}`,
    '  LogLevel ERROR', '  ExitOnForwardFailure yes',
    // The same keepalive as ferry's link (20 s × 3), for the reverse tunnel and the operator alike.
    '  ServerAliveInterval 20', '  ServerAliveCountMax 3', '');
  const file = join(dir, `${name}.ssh_config`);
  writeFileSync(file, lines.join('\n'));
  return file;
}
