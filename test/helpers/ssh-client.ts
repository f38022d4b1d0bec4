/**
 * The real OpenSSH client with a fixed option list: every test writes an ssh_config with
 * the relay as a host and devices behind it via ProxyJump, pinned host keys, no agent,
 * no user config, batch mode.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './env.ts';

/** One operator's view of one relay: an ssh_config and a known_hosts. */
export interface SshSetup {
  config: string;
  knownHosts: string;
  /** The ssh_config Host alias of the relay. */
  relay: string;
}

/** Writes an ssh_config for `user` with key `keyPath`, reaching the relay at 127.0.0.1:`port`. */
export function sshSetup(dir: string, o: { port: number; relayHost?: string; user: string; keyPath: string; relayKeyLine: string; deviceKeys?: Record<string, string>; deviceUser?: string; connectTimeout?: number }): SshSetup {
  const knownHosts = join(dir, `known_hosts-${o.user}`);
  const host = o.relayHost ?? '127.0.0.1';
  writeFileSync(knownHosts, [`[${host}]:${o.port} ${o.relayKeyLine}`, ...Object.entries(o.deviceKeys ?? {}).map(([n, k]) => `${n} ${k}`), ''].join('\n'));
  const common = [
    `  IdentityFile ${o.keyPath}`, '  IdentitiesOnly yes', '  IdentityAgent none', `  UserKnownHostsFile ${knownHosts}`,
    '  GlobalKnownHostsFile /dev/null', '  StrictHostKeyChecking yes', '  BatchMode yes',
    `  ConnectTimeout ${o.connectTimeout ?? 10}`, '  ControlMaster no', '  ControlPath none',
  ];
  const config = join(dir, `ssh_config-${o.user}`);
  writeFileSync(config, [
    // INFO on the jump connection: OpenSSH prints the relay's refusal ("open failed: …") at that level.
    'Host relay', `  HostName ${host}`, `  Port ${o.port}`, `  User ${o.user}`, '  LogLevel INFO', ...common, '',
    'Host * !relay', '  ProxyJump relay', '  LogLevel ERROR', ...(o.deviceUser ? [`  User ${o.deviceUser}`] : []), ...common, '',
  ].join('\n'));
  return { config, knownHosts, relay: 'relay' };
}

/** `ssh -F config ARGS…` */
export function ssh(s: SshSetup, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('ssh', ['-F', s.config, ...args], opts);
}

/** An operator command on the relay: `ssh -F config relay WORDS…` */
export function relayCommand(s: SshSetup, words: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return ssh(s, [s.relay, ...words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`))], opts);
}
