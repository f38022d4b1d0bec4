/**
 * `ferry demo`: a relay and one device on this machine, in a temp dir, with an operator key
 * and an ssh_config ready, so that the printed `ssh` command works at once. The device is
 * served by the agent's built-in SSH server, so no sshd is needed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../agent/agent.ts';
import { AGENT_DEFAULTS } from '../agent/config.ts';
import { chooseLogFormat, createLogger } from '../common/log.ts';
import { generateKeyPair, writePrivateFile } from '../common/ssh-keys.ts';
import { createLoginLink, createToken, perform } from '../relay/operations/index.ts';
import { RELAY_DEFAULTS } from '../relay/config.ts';
import { startRelay } from '../relay/relay.ts';
import { selfSignedCertPath } from '../relay/http/tls-cert.ts';
import { deviceNameProblem } from '../protocol/names.ts';
import { Options, type FlagSpec } from './options.ts';
import { untilSignal } from './relay-command.ts';

export const DEMO_FLAGS: Record<string, FlagSpec> = {
  'ssh-listen': { type: 'string', help: 'relay SSH address (default 127.0.0.1:0: a free port, printed with the commands)' },
  name: { type: 'string', help: 'the demo device name (default demo)' },
  keep: { type: 'boolean', help: 'keep the temp dir after stopping' },
  'log-level': { type: 'string', env: 'FERRY_LOG_LEVEL', help: 'default warn' },
  'log-format': { type: 'string', env: 'FERRY_LOG_FORMAT', help: 'json or pretty (default: pretty when stderr is a terminal, else json)' },
};

/** The ssh_config the demo writes: the relay as a host, and the device behind it via ProxyJump. */
export function demoSshConfig(o: { dir: string; relayPort: number; device: string; deviceUser: string }): string {
  const common = [`  IdentityFile ${join(o.dir, 'operator_key')}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${join(o.dir, 'known_hosts')}`, '  StrictHostKeyChecking yes', '  BatchMode yes'];
  return [
    'Host ferry-relay', '  HostName 127.0.0.1', `  Port ${o.relayPort}`, '  User admin', ...common, '',
    `Host ${o.device}`, `  User ${o.deviceUser}`, '  ProxyJump ferry-relay', ...common, '',
  ].join('\n');
}

const cfgPath = (dir: string) => join(dir, 'ssh_config');

/** Runs `ferry demo` until SIGINT or SIGTERM. */
export async function demoMain(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  const o = new Options(argv, DEMO_FLAGS, env, { command: 'demo' });
  // A free port by default: a fixed one (2222) is often taken, by a real relay among others.
  const listen = o.hostPort('ssh-listen', { host: '127.0.0.1', port: 0 }, true)!;
  const name = o.string('name') ?? 'demo';
  const level = o.string('log-level') === null ? 'warn' : o.logLevel();
  const nameProblem = deviceNameProblem(name);
  // One logger per component, named 'relay' and 'agent' as in their own processes: the lines
  // read like a real deployment's, and no key is bound twice (a child's `part` over another's).
  const output = { format: chooseLogFormat(o.logFormat(), process.stderr.isTTY === true) };
  o.check(nameProblem ? [`--name: ${nameProblem}`] : []);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c();
    if (!o.boolean('keep')) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const operator = generateKeyPair('ferry-demo-operator');
    writePrivateFile(join(dir, 'operator_key'), operator.privateKey);
    writeFileSync(join(dir, 'operator_key.pub'), operator.publicKey.line + '\n');

    const relay = await startRelay(Object.freeze({
      ...RELAY_DEFAULTS, dataDir: join(dir, 'relay'), sshListen: listen, httpListen: { host: '127.0.0.1', port: 0 }, publicAddress: null, adminKeys: [operator.publicKey.line], logLevel: level,
    }), { log: createLogger(level, 'relay', output) });
    cleanups.push(() => relay.stop());
    const relayPort = relay.sshAddress.port;

    const opCtx = () => ({
      store: relay.store, now: Date.now(),
      relay: { publicAddress: `127.0.0.1:${relayPort}`, fingerprint: relay.fingerprint, hostKeyLine: relay.hostKeyLine, consoleUrl: relay.http!.url, agentEndpoints: relay.agentEndpoints, tlsPin: relay.tlsPin },
    });
    const local = { kind: 'local', user: `local:${userInfo().username}` } as const;
    const created = perform(opCtx(), local, createToken, { name, approve: true, ttlMs: 10 * 60_000 });

    const agent = await startAgent(Object.freeze({
      ...AGENT_DEFAULTS, stateDir: join(dir, 'agent'), relay: null, token: created.token, name: null,
      sshTarget: 'embedded', logLevel: level,
    }), { log: createLogger(level, 'agent', output) });
    cleanups.push(() => agent.stop());
    await agent.waitUntilUp();

    // Pinned host keys on both hops: the relay's, and the device's as it reported it at enrollment.
    const deviceKey = relay.store.getDevice(name)!.hostKeyLine!;
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${relayPort} ${relay.hostKeyLine}\n${name} ${deviceKey}\n`);
    const cfg = cfgPath(dir);
    const deviceUser = userInfo().username;
    writeFileSync(cfg, demoSshConfig({ dir, relayPort, device: name, deviceUser }));

    // Made last, so that its two minutes start when the newcomer can read it.
    const signIn = perform(opCtx(), local, createLoginLink, { user: 'admin' });
    out.write([
      `ferry demo is running in ${dir} (Ctrl-C stops it${o.boolean('keep') ? '' : ' and removes the directory'}).`,
      `  relay   127.0.0.1:${relayPort}, host key ${relay.fingerprint}, operator 'admin'`,
      `  https   ${relay.http!.url} (self-signed, SHA-256 ${relay.http!.certFingerprint}): the web console, /healthz and /metrics`,
      `  console ${signIn.url}`,
      `          signs a browser in as 'admin': it works once, within ${signIn.ttlSeconds / 60} minutes; 'ssh -F ${cfgPath(dir)} ferry-relay login' prints a new one`,
      `  device  '${name}', online, served by the agent's built-in SSH server (no sshd needed); log in as '${deviceUser}'`,
      '',
      'Try, in another terminal:',
      `  ssh -F ${cfg} ${name} 'echo hello from $(hostname); exit 3'; echo "exit code $?"`,
      `  ssh -F ${cfg} ferry-relay devices`,
      `  scp -F ${cfg} /etc/hostname ${name}:${join(dir, 'copied-over-ferry')}`,
      `  ssh -F ${cfg} ferry-relay audit --device ${name}     # who reached it, and what the device says happened (exit 3, the copied file)`,
      `  curl --cacert ${selfSignedCertPath(join(dir, 'relay'))} ${relay.http!.url}/healthz`,
      `  ssh -i ${join(dir, 'operator_key')} -o UserKnownHostsFile=${join(dir, 'known_hosts')} -p ${relayPort} admin@127.0.0.1 whoami`,
      '',
    ].join('\n'));
    await untilSignal();
  } finally {
    await cleanup();
  }
  return 0;
}
