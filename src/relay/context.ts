/** What every part of a running relay shares: store, registry, config, log and clock. */
import type { Logger } from '../common/log.ts';
import type { Clock } from '../common/clock.ts';
import type { RelayConfig } from './config.ts';
import type { Registry } from './registry.ts';
import type { RelayEvents } from './relay-events.ts';
import type { SessionTracker } from './sessions.ts';
import type { Store } from './store.ts';

/** The running relay's shared parts. */
export interface RelayContext {
  readonly config: Readonly<RelayConfig>;
  readonly store: Store;
  readonly registry: Registry;
  readonly log: Logger;
  readonly clock: Clock;
  /** HOST:PORT of the SSH listener as operators and devices reach it. */
  readonly publicAddress: string;
  /** What tokens tell agents to dial, in order (relay-endpoint.ts): --agent-endpoints, or relay-address.ts's defaults. */
  readonly agentEndpoints: readonly string[];
  /** The pin of the relay's own self-signed TLS key, which tokens carry for wss:// endpoints; null otherwise. */
  readonly tlsPin: string | null;
  /** The relay's host key, `ssh-ed25519 AAAA…`. */
  readonly hostKeyLine: string;
  /** The relay's host-key fingerprint, `SHA256:…`. */
  readonly fingerprint: string;
  /**
   * The relay's host private key: also its client key for console sessions on devices'
   * built-in servers, which pinned it at enrollment (console-session.ts).
   */
  readonly hostPrivateKey: string;
  /** Brings live links and sessions in line with the store (after a revoke, rm, user rm). */
  reconcile(device?: string): void;
  /** Per device: where to push its authorized operator keys when they change (see device-link.ts). */
  readonly keyWatchers: Map<string, (keys: import('../protocol/authorized-keys.ts').AuthorizedKey[]) => void>;
  /** Every live connection and reach, so that a revocation ends each kind at once (sessions.ts). */
  readonly sessions: SessionTracker;
  /** Every browser terminal, live or detached and waiting for a resume (console-terminal.ts). */
  readonly consoles: import('./console-terminal.ts').ConsoleTerminals;
  /** Changes the console's live views follow (relay-events.ts). */
  readonly events: RelayEvents;
  /** The web console's URL (the HTTP listener's), for sign-in links; null without an HTTP listener. */
  readonly consoleUrl: string | null;
  /** Channels the relay asked devices to open since it started, and how many of those failed (read by /metrics). */
  readonly channelStats: { opened: number; failed: number };
}
