/**
 * An agent with several relay endpoints (the token's list, or --relay a,b): it tries them in
 * order with a staggered start, as happy eyeballs does for addresses. The first starts at once;
 * the next starts when the one before it failed or has not connected within
 * LIMITS.endpointFallbackMs; the first stream up wins and any that connect later are closed.
 * When all fail, the error lists each endpoint's reason.
 *
 * Sticky: the endpoint that last connected is tried first next time (the agent keeps it in
 * agent.json as `lastGood`), so a device on an HTTPS-only network does not wait the fallback
 * delay on its dead TCP endpoint at every reconnect.
 *
 * `tryOrder` is the pure part; `raceDialers` runs it on Dialers with an injectable clock.
 */
import type { Duplex } from 'node:stream';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.ts';
import { FerryError, isFerryError, type FerryErrorCode } from '../common/errors.ts';
import { isUnreachable, markUnreachable, tcpDialer, type Dialer } from '../net/dialer.ts';
import { webSocketDialer } from '../net/ws-dialer.ts';
import { LIMITS } from '../protocol/limits.ts';
import { formatRelayEndpoint, type RelayEndpoint } from '../protocol/relay-endpoint.ts';
import { proxyFor, type ProxySettings } from './proxy-choice.ts';

/** One endpoint of a list: its text (as formatRelayEndpoint writes it, the key `lastGood` names) and its dialer. */
export interface EndpointEntry { key: string; dialer: Dialer }

/** The order to try `keys` in: `lastGood` first when the list holds it, then the rest as listed. */
export function tryOrder(keys: readonly string[], lastGood: string | undefined): string[] {
  if (lastGood === undefined || !keys.includes(lastGood)) return [...keys];
  return [lastGood, ...keys.filter((k) => k !== lastGood)];
}

/** How a race runs. */
export interface RaceOptions {
  clock: Clock;
  /** Start the next dialer after this long without a result from the ones running. */
  fallbackMs: number;
}

/**
 * Dials `dialers` in order, staggered (see the top of this file). Every dial gets what is left
 * of `timeoutMs` when it starts. Resolves with the first stream and its index; rejects when
 * all have failed (see `combinedFailure`).
 */
export function raceDialers(dialers: readonly Dialer[], timeoutMs: number, o: RaceOptions): Promise<{ index: number; stream: Duplex }> {
  if (dialers.length === 0) return Promise.reject(new FerryError('FERRY_CONFIG_INVALID', 'no relay endpoint to dial'));
  return new Promise((resolve, reject) => {
    const started = o.clock.now();
    const reasons: unknown[] = [];
    let next = 0;
    let failed = 0;
    let settled = false;
    let timer: TimerHandle | null = null;
    const startNext = () => {
      timer?.cancel();
      timer = null;
      if (settled || next >= dialers.length) return;
      const i = next++;
      const left = Math.max(1, timeoutMs - (o.clock.now() - started));
      dialers[i]!.dial(left).then((stream) => {
        // A later winner is not needed: close it.
        if (settled) return void stream.destroy();
        settled = true;
        timer?.cancel();
        resolve({ index: i, stream });
      }, (err: unknown) => {
        reasons[i] = err;
        failed++;
        if (settled) return;
        if (failed === dialers.length) {
          settled = true;
          reject(combinedFailure(dialers, reasons));
          return;
        }
        // A failure frees its turn at once.
        startNext();
      });
      if (next < dialers.length) timer = o.clock.setTimeout(startNext, o.fallbackMs);
    };
    startNext();
  });
}

/**
 * The error when every dialer failed. One dialer: its own error, unchanged. Several: one
 * FerryError listing each endpoint's reason, with their code when all share one (else
 * FERRY_CONNECT_FAILED), marked unreachable only when every one reached nothing.
 */
export function combinedFailure(dialers: readonly Dialer[], reasons: readonly unknown[]): unknown {
  if (dialers.length === 1) return reasons[0];
  const codes = new Set(reasons.map((r) => (isFerryError(r) ? r.code : 'FERRY_CONNECT_FAILED')));
  const code: FerryErrorCode = codes.size === 1 ? [...codes][0]! : 'FERRY_CONNECT_FAILED';
  const lines = dialers.map((d, i) => `${d.label}: ${(reasons[i] as Error | undefined)?.message ?? String(reasons[i])}`);
  const err = new FerryError(code, `no relay endpoint worked (${lines.join('; ')})`, { cause: reasons });
  return reasons.every(isUnreachable) ? markUnreachable(err) : err;
}

/** A Dialer over a list of endpoints, and the endpoint that last connected. */
export interface EndpointListDialer extends Dialer {
  /** The key of the endpoint that last connected (or the one given at the start). */
  readonly lastGood: string | undefined;
  outcome(sshUp: boolean): void;
}

/** How the list is tried. */
export interface EndpointListOptions {
  clock?: Clock;
  /** Default LIMITS.endpointFallbackMs. */
  fallbackMs?: number;
  /** Tried first (e.g. from agent.json). */
  lastGood?: string;
  /** Told when a different endpoint than before has logged in (to save it). */
  onGood?: (key: string) => void;
}

/**
 * Races `entries` at every dial, the last good one first. Its `label` is the endpoint in use
 * once one has connected (error messages of the SSH handshake on top name it), before that
 * the whole list.
 */
export function endpointListDialer(entries: readonly EndpointEntry[], o: EndpointListOptions = {}): EndpointListDialer {
  const clock = o.clock ?? systemClock;
  const fallbackMs = o.fallbackMs ?? LIMITS.endpointFallbackMs;
  let lastGood = o.lastGood !== undefined && entries.some((e) => e.key === o.lastGood) ? o.lastGood : undefined;
  let inUse: EndpointEntry | null = null;
  /** The endpoint whose stream came up but whose SSH did not: tried last next time. */
  let demoted: string | undefined;
  const byKey = new Map(entries.map((e) => [e.key, e]));
  return {
    get label() { return inUse?.dialer.label ?? entries.map((e) => e.dialer.label).join(', '); },
    get lastGood() { return lastGood; },
    async dial(timeoutMs) {
      const keys = tryOrder(entries.map((e) => e.key), lastGood);
      const order = (demoted === undefined ? keys : [...keys.filter((k) => k !== demoted), demoted]).map((k) => byKey.get(k)!);
      const { index, stream } = await raceDialers(order.map((e) => e.dialer), timeoutMs, { clock, fallbackMs });
      inUse = order[index]!;
      return stream;
    },
    outcome(sshUp) {
      if (inUse === null) return;
      if (!sshUp) {
        demoted = inUse.key;
        if (lastGood === inUse.key) lastGood = undefined;
        return;
      }
      demoted = undefined;
      if (lastGood === inUse.key) return;
      lastGood = inUse.key;
      try {
        o.onGood?.(lastGood);
      } catch {
        // Remembering it is an optimisation (agent.json on a read-only disk): the link stands.
      }
    },
  };
}

/** What the dialers of an agent's endpoints need. */
export interface AgentDialerOptions {
  /** The relay's TLS key pin for wss endpoints (from the token), or null for CA verification. */
  tlsPin: string | null;
  proxies: ProxySettings;
  /** TCP keepalive of TCP endpoints. */
  keepaliveMs: number;
  /**
   * Told of an HTTPS_PROXY this agent cannot use (not http://): the endpoint is dialled
   * directly instead, since the variable may be meant for other programs. A bad --proxy is
   * the user's own word for this agent, and stops it.
   */
  onProxyProblem?: (problem: string) => void;
}

/**
 * The dialer of each endpoint: TCP (never through a proxy) or WebSocket (through the proxy
 * proxy-choice.ts picks). Throws FERRY_CONFIG_INVALID for a proxy setting it cannot use.
 */
export function endpointEntries(endpoints: readonly RelayEndpoint[], o: AgentDialerOptions): EndpointEntry[] {
  return endpoints.map((e) => {
    const key = formatRelayEndpoint(e);
    if (e.transport === 'tcp') return { key, dialer: tcpDialer(e.host, e.port, { keepaliveMs: o.keepaliveMs, redialMs: LIMITS.relayRedialMs }) };
    let proxy = proxyFor(e, o.proxies);
    if (proxy !== null && 'problem' in proxy) {
      if (o.proxies.flag !== null || !o.onProxyProblem) throw new FerryError('FERRY_CONFIG_INVALID', proxy.problem);
      o.onProxyProblem(`${proxy.problem}; dialling ${key} directly`);
      proxy = null;
    }
    return { key, dialer: webSocketDialer(e, { tlsPin: o.tlsPin, proxy: proxy?.url ?? null }) };
  });
}
