/** The agent's configuration: its type, defaults, and a validator that reports every problem at once. */
import { LIMITS } from '../protocol/limits.ts';
import type { LogLevel } from '../common/log.ts';
import { parseRelayEndpoints } from '../protocol/relay-endpoint.ts';
import { proxyProblem, type ProxySettings } from './proxy-choice.ts';

import { DEFAULT_FORWARD_RULES, type ForwardRule } from './embedded/forward-policy.ts';

/** A TCP SSH target: the device's own sshd (or any TCP service speaking SSH). */
export interface TcpTarget { host: string; port: number }

/** Where inbound channels go: the agent's built-in SSH server, or a TCP SSH target. */
export type SshTarget = 'embedded' | TcpTarget;

/** Everything the agent needs to run. */
export interface AgentConfig {
  /** Identity key and enrollment state live here (mode 0700; the key at 0600). */
  stateDir: string;
  /**
   * Relay endpoints, comma-separated (HOST:PORT and/or wss://HOST[:PORT]/, tried in order);
   * overrides the token's list (and, when enrolled, the saved one) for this run. Optional.
   */
  relay: string | null;
  /** The HTTP proxy for wss endpoints: --proxy, and HTTPS_PROXY / NO_PROXY as the CLI read them (proxy-choice.ts). */
  proxies: ProxySettings;
  /** Enrollment token; needed on the first run only. */
  token: string | null;
  /** Device name to ask for when the token does not fix one. */
  name: string | null;
  /** Where inbound SSH channels go. Null: use the one saved at enrollment (at first, 'embedded'). */
  sshTarget: SshTarget | null;
  /** Where `ssh -L` through the built-in server may go. */
  forwardRules: readonly ForwardRule[];
  logLevel: LogLevel;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  connectTimeoutMs: number;
  targetConnectTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  backoffResetAfterMs: number;
  /** How often to retry once the relay has refused this device's key (revoked or removed). */
  revokedRetryMs: number;
  /** Stop (and let the CLI exit with EXIT_REVOKED) instead of retrying after such a refusal. */
  exitOnRevoked: boolean;
}

/** Defaults for the tunables. */
export const AGENT_DEFAULTS = Object.freeze({
  logLevel: 'info' as LogLevel,
  forwardRules: DEFAULT_FORWARD_RULES,
  keepaliveIntervalMs: LIMITS.keepaliveIntervalMs,
  keepaliveCountMax: LIMITS.keepaliveCountMax,
  connectTimeoutMs: LIMITS.connectTimeoutMs,
  targetConnectTimeoutMs: LIMITS.targetConnectTimeoutMs,
  backoffBaseMs: LIMITS.backoffBaseMs,
  backoffMaxMs: LIMITS.backoffMaxMs,
  backoffResetAfterMs: LIMITS.backoffResetAfterMs,
  revokedRetryMs: LIMITS.revokedRetryMs,
  exitOnRevoked: false,
  /** No proxy unless the CLI found one (--proxy, HTTPS_PROXY). */
  proxies: Object.freeze({ flag: null, httpsProxy: null, noProxy: null }) as ProxySettings,
});

/** Every problem with `c`; empty when it is fine. */
export function agentConfigProblems(c: AgentConfig): string[] {
  const problems: string[] = [];
  if (!c.stateDir) problems.push('--state-dir is required: where the agent keeps its key and enrollment');
  if (c.relay !== null) {
    const parsed = parseRelayEndpoints(c.relay);
    if ('problem' in parsed) problems.push(`--relay: ${parsed.problem}`);
  }
  if (c.proxies.flag !== null) {
    const p = proxyProblem(c.proxies.flag, '--proxy');
    if (p) problems.push(p);
  }
  if (c.sshTarget !== null && c.sshTarget !== 'embedded' && (!Number.isInteger(c.sshTarget.port) || c.sshTarget.port < 1 || c.sshTarget.port > 65535)) problems.push('--ssh-target port must be 1-65535');
  for (const key of ['keepaliveIntervalMs', 'connectTimeoutMs', 'targetConnectTimeoutMs', 'backoffBaseMs', 'backoffMaxMs', 'backoffResetAfterMs', 'revokedRetryMs'] as const) {
    if (!Number.isFinite(c[key]) || c[key] < 1) problems.push(`${key} must be a positive number`);
  }
  if (!Number.isInteger(c.keepaliveCountMax) || c.keepaliveCountMax < 1) problems.push('keepaliveCountMax must be a whole number of at least 1');
  if (c.backoffBaseMs > c.backoffMaxMs) problems.push('the backoff base must not exceed its maximum');
  return problems;
}
