/** `ferry agent`: flags → AgentConfig → a running agent until SIGTERM or SIGINT. */
import { readFileSync } from 'node:fs';
import { AGENT_DEFAULTS, agentConfigProblems, type AgentConfig } from '../agent/config.ts';
import { startAgent } from '../agent/agent.ts';
import { parseForwardRules } from '../agent/embedded/forward-policy.ts';
import { proxySettingsFrom } from '../agent/proxy-choice.ts';
import { describeTarget } from '../agent/targets.ts';
import { chooseLogFormat, createLogger, type LogFormat } from '../common/log.ts';
import { deviceNameProblem } from '../protocol/names.ts';
import { Options, type FlagSpec } from './options.ts';
import { untilSignal } from './relay-command.ts';

export const AGENT_FLAGS: Record<string, FlagSpec> = {
  'state-dir': { type: 'string', env: 'FERRY_STATE_DIR', help: 'identity key and enrollment (required)' },
  relay: { type: 'string', env: 'FERRY_RELAY', help: 'relay endpoints, tried in order, comma-separated: HOST:PORT (SSH over TCP) and/or wss://HOST[:PORT]/ (through HTTPS) (default: those of the token, then those saved at enrollment)' },
  proxy: { type: 'string', env: 'FERRY_PROXY', help: 'HTTP proxy for wss:// endpoints, http://[user:pass@]HOST:PORT (default: HTTPS_PROXY, minus NO_PROXY); HOST:PORT endpoints never use a proxy; command lines show in ps, so give a password in FERRY_PROXY' },
  token: { type: 'string', env: 'FERRY_TOKEN', help: 'enrollment token, first run only (prefer the env var or --token-file: argv is visible in ps)' },
  'token-file': { type: 'string', help: 'read the enrollment token from this file' },
  name: { type: 'string', env: 'FERRY_NAME', help: 'device name to ask for when the token fixes none (default: host name)' },
  'ssh-target': { type: 'string', env: 'FERRY_SSH_TARGET', help: "where SSH channels go: 'embedded' (the built-in server, default) or HOST:PORT of the device's sshd; saved" },
  'allow-forward': { type: 'string', multiple: true, help: "where 'ssh -L' through the built-in server may go, HOST:PORT or HOST:* (repeatable; default loopback only)" },
  'log-level': { type: 'string', env: 'FERRY_LOG_LEVEL', help: 'fatal, error, warn, info (default), debug, trace, silent' },
  'log-format': { type: 'string', env: 'FERRY_LOG_FORMAT', help: 'json or pretty (default: pretty when stderr is a terminal, else json)' },
  'keepalive-interval': { type: 'string', help: 'ping the relay this often (default 20s)' },
  'keepalive-count': { type: 'string', help: 'missed pings before the link is dead (default 3)' },
  'connect-timeout': { type: 'string', help: 'one connection attempt, TCP to login (default 15s)' },
  'backoff-max': { type: 'string', help: 'longest wait between attempts (default 60s)' },
  'revoked-retry': { type: 'string', help: 'once the relay refuses this device (revoked or removed), retry this often, jittered over its upper half (default 6h)' },
  'exit-on-revoked': { type: 'boolean', env: 'FERRY_EXIT_ON_REVOKED', help: 'exit with code 77 instead of retrying once the relay refuses this device' },
};

/**
 * Exit code of an agent that stopped because the relay refuses its key (--exit-on-revoked):
 * sysexits' EX_NOPERM, distinct from failures worth a restart, so that a service manager can
 * be told not to restart it (systemd: RestartPreventExitStatus=77).
 */
export const EXIT_REVOKED = 77;

/** Builds and validates the agent's config, and the log format asked for, from argv and the environment. */
export function agentConfigFromArgs(argv: string[], env: NodeJS.ProcessEnv): { config: Readonly<AgentConfig>; logFormat: LogFormat | null } {
  const o = new Options(argv, AGENT_FLAGS, env, { command: 'agent' });
  let token = o.string('token');
  const tokenFile = o.string('token-file');
  if (tokenFile !== null) {
    try { token = readFileSync(tokenFile, 'utf8').trim(); } catch (err) { o.problems.push(`--token-file ${tokenFile}: ${(err as Error).message}`); }
  }
  const name = o.string('name');
  if (name !== null) {
    const p = deviceNameProblem(name);
    if (p) o.problems.push(`--name: ${p}`);
  }
  const d = AGENT_DEFAULTS;
  const allowForward = o.strings('allow-forward');
  const parsedRules = parseForwardRules(allowForward);
  o.problems.push(...parsedRules.problems.map((p) => `--allow-forward: ${p}`));
  const forwardRules = allowForward.length ? parsedRules.rules : d.forwardRules;
  const config: AgentConfig = {
    stateDir: o.string('state-dir') ?? '',
    relay: o.string('relay'),
    proxies: proxySettingsFrom(o.string('proxy'), env),
    token,
    name,
    sshTarget: o.string('ssh-target') === 'embedded' ? 'embedded' : o.hostPort('ssh-target', null),
    forwardRules,
    logLevel: o.logLevel(),
    keepaliveIntervalMs: o.duration('keepalive-interval', d.keepaliveIntervalMs),
    keepaliveCountMax: o.integer('keepalive-count', d.keepaliveCountMax, 1, 100),
    connectTimeoutMs: o.duration('connect-timeout', d.connectTimeoutMs),
    targetConnectTimeoutMs: d.targetConnectTimeoutMs,
    backoffBaseMs: d.backoffBaseMs,
    backoffMaxMs: o.duration('backoff-max', d.backoffMaxMs),
    backoffResetAfterMs: d.backoffResetAfterMs,
    revokedRetryMs: o.duration('revoked-retry', d.revokedRetryMs),
    exitOnRevoked: o.boolean('exit-on-revoked'),
  };
  const logFormat = o.logFormat();
  o.check(agentConfigProblems(config));
  return { config: Object.freeze(config), logFormat };
}

/** Runs `ferry agent`. */
export async function agentMain(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, errOut: NodeJS.WritableStream): Promise<number> {
  const { config, logFormat } = agentConfigFromArgs(argv, env);
  const log = createLogger(config.logLevel, 'agent', { format: chooseLogFormat(logFormat, process.stderr.isTTY === true) });
  const stopping = untilSignal();
  const agent = await Promise.race([startAgent(config, { log }), stopping.then(() => null)]);
  if (agent === null) return 0;
  out.write(`ferry agent: device '${agent.enrollment.name}' via ${agent.endpoints.join(', ')}, SSH target ${describeTarget(agent.enrollment.sshTarget)}\n`);
  const end = await Promise.race([stopping.then((signal) => ({ signal })), agent.stoppedOnRevoked.then((err) => ({ err }))]);
  if ('err' in end) {
    await agent.stop();
    log.flush();
    // Thrown, main.ts would exit 1 like any failure; this one must be told apart.
    errOut.write(`ferry: ${end.err.message}\nferry: stopping (--exit-on-revoked), exit code ${EXIT_REVOKED}\n`);
    return EXIT_REVOKED;
  }
  log.info({ signal: end.signal }, 'stopping');
  await agent.stop();
  log.flush();
  return 0;
}
