/** What the HTTP routes read from the running relay: live counts, each read when a request asks. */
import type { Lane } from '../admission.ts';
import type { ConsoleTerminals } from '../console-terminal.ts';
import type { SessionTracker } from '../sessions.ts';

/** Read-only views of the relay for /healthz and /metrics; nothing here is counted per request. */
export interface RelaySources {
  /** When the relay started (ms since the epoch) and the clock it runs on. */
  startedAt: number;
  now(): number;
  /** Devices with a registered live link. */
  devicesOnline(): number;
  /** SSH connections open now (devices and operators, authenticated or not). */
  sshConnections(): number;
  /** SSH handshakes running and connections queued for one, per lane. */
  handshakes(): Record<Lane, { running: number; waiting: number }>;
  /** Channels the relay asked devices to open, and how many failed. */
  channelStats: Readonly<{ opened: number; failed: number }>;
  sessions: Pick<SessionTracker, 'reaches' | 'connections' | 'totals'>;
  /** Browser terminals: live, detached, started, recording bytes written. */
  consoles: Pick<ConsoleTerminals, 'stats'>;
  /** Null when the store answers a query, else what went wrong. */
  storeProblem(): string | null;
}
