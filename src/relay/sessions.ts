/**
 * The relay's live sessions, for every kind of principal: who is connected, and which
 * device each of their reaches (`ssh -J`) goes to, with bytes each way. One tracker, so that
 * a revocation, a role change, an idle timeout or a shutdown ends every kind the same way
 * and each end is audited with why. It holds no policy: whoever calls `endReaches` decides
 * which to end, and `admit` applies only the configured caps.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Clock, TimerHandle } from '../common/clock.ts';
import type { Principal } from './principal.ts';
import type { AuditEntry } from './store.ts';

/** The caps and the idle timeout that the tracker enforces (RelayConfig carries them). */
export interface SessionLimits {
  /** Live reaches one user may hold at once, over all their connections. */
  maxSessionsPerUser: number;
  /** Live reaches to one device at once, from everyone. */
  maxSessionsPerDevice: number;
  /** A reach that moves no byte either way for this long is ended; 0: never. */
  sessionIdleTimeoutMs: number;
}

/** Why a reach ended. Stable strings: they are written in the audit log and matched by scripts. */
export type ReachEndReason =
  | 'client closed'
  | 'device closed'
  | 'link lost'
  | 'idle timeout'
  | 'relay shutdown'
  | `access revoked: ${string}`;


/**
 * What a reach is: `jump`, an operator's own SSH session through the relay (`ssh -J`), end
 * to end; `console`, the relay's SSH session to the device for an operator's browser terminal.
 */
export type ReachKind = 'jump' | 'console';

/** What `admit` may be told of a reach beyond its device: its kind, the login (console: the relay knows it), who learns why it ended. */
export interface ReachOptions {
  kind?: ReachKind;
  login?: string;
  /** The id of the reach's recording (console), written in its reach.start and reach.end rows as `recording`. */
  recording?: string;
  onEnd?: (why: ReachEndReason) => void;
}

/** A live reach as callers see it: `bytesIn` went from the operator to the device, `bytesOut` back. */
export interface ReachInfo {
  readonly id: string;
  readonly user: string;
  readonly device: string;
  readonly kind: ReachKind;
  /** The login name on the device when the relay knows it (console); a jump's travels inside the end-to-end session. */
  readonly login: string | null;
  /** The id of the reach's recording, when the relay records it (console); null for a jump. */
  readonly recordingId: string | null;
  readonly startedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly principal: Principal;
}

/** A connection the tracker knows of; `end` is how the tracker closes it. */
export interface LiveConnection {
  readonly id: number;
  readonly principal: Principal;
}

/** A place taken under the caps by `admit`: `start` turns it into a live reach, `cancel` gives it back. */
export interface ReachTicket {
  /**
   * Starts counting and watching the reach once both channels are open; calls `pipe` to
   * join them. Null, with both channels destroyed, when the relay ended the connection
   * while the device's side was opening (a revocation must not let a late channel through).
   */
  start(client: Duplex, device: Duplex, pipe: (a: Duplex, b: Duplex, onDone: () => void) => void): ReachInfo | null;
  /** Gives the place back (the channel to the device could not be opened). */
  cancel(): void;
}

interface ConnectionEntry extends LiveConnection { end(why: string): void; reaches: Set<Reach> }

interface Reach extends ReachInfo {
  bytesIn: number;
  bytesOut: number;
  lastActivity: number;
  why: ReachEndReason | null;
  link: object;
  conn: ConnectionEntry;
  idle: TimerHandle | null;
  close(): void;
  /** Writes the reach.end row and gives the place back; only the first call does anything. */
  finish(): void;
}

/** The one tracker of live connections and reaches. */
export class SessionTracker {
  readonly #clock: Clock;
  readonly #limits: Readonly<SessionLimits>;
  readonly #audit: (e: AuditEntry) => void;
  readonly #connections = new Set<ConnectionEntry>();
  readonly #reaches = new Set<Reach>();
  /** Places taken per user and per device: live reaches plus admitted ones still opening. */
  readonly #perUser = new Map<string, number>();
  readonly #perDevice = new Map<string, number>();
  #nextConnection = 1;
  /** Reaches started and bytes moved by reaches that have ended; `totals()` adds the live ones (for /metrics). */
  readonly #ended = { reaches: 0, bytesIn: 0, bytesOut: 0 };

  /** Told of every reach that starts (`end` null) and ends, after its row is written (the console's live views). */
  readonly #onReach: (r: ReachInfo, end: { at: number; why: ReachEndReason } | null) => void;

  constructor(deps: { clock: Clock; limits: Readonly<SessionLimits>; audit(e: AuditEntry): void; onReach?(r: ReachInfo, end: { at: number; why: ReachEndReason } | null): void }) {
    this.#clock = deps.clock;
    this.#limits = deps.limits;
    this.#audit = deps.audit;
    this.#onReach = deps.onReach ?? (() => undefined);
  }

  /** Records a connection that authenticated; `end(why)` is called when the tracker closes it. */
  connect(principal: Principal, end: (why: string) => void): LiveConnection {
    const entry: ConnectionEntry = { id: this.#nextConnection++, principal, end, reaches: new Set() };
    this.#connections.add(entry);
    return entry;
  }

  /** Forgets a connection that closed (its reaches end on their own as their channels close). */
  disconnect(conn: LiveConnection): void {
    this.#connections.delete(conn as ConnectionEntry);
  }

  /**
   * Takes a place for a reach from `conn` to `device` over `link` (the device's live link),
   * or says which cap refuses it, in words for the operator.
   */
  admit(conn: LiveConnection, device: string, link: object, opts: ReachOptions = {}): ReachTicket | { refused: string } {
    const entry = conn as ConnectionEntry;
    const user = entry.principal.user;
    const byUser = this.#perUser.get(user) ?? 0;
    const byDevice = this.#perDevice.get(device) ?? 0;
    if (byUser >= this.#limits.maxSessionsPerUser) {
      return { refused: `'${user}' already has ${byUser} sessions open, the most one user may hold (--max-sessions-per-user ${this.#limits.maxSessionsPerUser}): close one and try again` };
    }
    if (byDevice >= this.#limits.maxSessionsPerDevice) {
      return { refused: `device '${device}' already has ${byDevice} sessions open, the most one device takes (--max-sessions-per-device ${this.#limits.maxSessionsPerDevice}): try again when one has ended` };
    }
    bump(this.#perUser, user, 1);
    bump(this.#perDevice, device, 1);
    let settled = false;
    const release = () => {
      if (settled) return;
      settled = true;
      bump(this.#perUser, user, -1);
      bump(this.#perDevice, device, -1);
    };
    return {
      cancel: release,
      start: (client, deviceStream, pipe) => this.#start(entry, device, link, client, deviceStream, pipe, release, opts),
    };
  }

  #start(conn: ConnectionEntry, device: string, link: object, client: Duplex, deviceStream: Duplex, pipe: (a: Duplex, b: Duplex, onDone: () => void) => void, release: () => void, opts: ReachOptions): ReachInfo | null {
    if (!this.#connections.has(conn)) {
      release();
      client.destroy();
      deviceStream.destroy();
      return null;
    }
    const now = this.#clock.now();
    let finished = false;
    const kind = opts.kind ?? 'jump';
    const login = opts.login ?? null;
    const recordingId = opts.recording ?? null;
    const named = { ...(login === null ? {} : { login }), ...(recordingId === null ? {} : { recording: recordingId }) };
    const reach: Reach = {
      id: randomUUID(), user: conn.principal.user, device, kind, login, recordingId, startedAt: now, principal: conn.principal,
      bytesIn: 0, bytesOut: 0, lastActivity: now, why: null, link, conn, idle: null,
      close: () => { client.destroy(); deviceStream.destroy(); },
      finish: () => {
        if (finished) return;
        finished = true;
        reach.idle?.cancel();
        this.#reaches.delete(reach);
        conn.reaches.delete(reach);
        release();
        this.#ended.reaches++;
        this.#ended.bytesIn += reach.bytesIn;
        this.#ended.bytesOut += reach.bytesOut;
        const end = this.#clock.now();
        this.#audit({
          at: end, actor: reach.user, action: 'reach.end', target: device,
          detail: { session: reach.id, kind, ...named, started: reach.startedAt, durationMs: end - reach.startedAt, bytesIn: reach.bytesIn, bytesOut: reach.bytesOut, why: reach.why ?? 'client closed' },
        });
        opts.onEnd?.(reach.why ?? 'client closed');
        this.#onReach(reach, { at: end, why: reach.why ?? 'client closed' });
      },
    };
    this.#reaches.add(reach);
    conn.reaches.add(reach);
    this.#audit({ at: now, actor: reach.user, action: 'reach.start', target: device, detail: { session: reach.id, kind, ...named, remote: remoteOf(conn.principal) } });
    this.#onReach(reach, null);
    // Counting with 'data' listeners beside the pipe: no copy and no extra stream in the
    // path, so the tunnel stays as fast as before (the bench compares it with OpenSSH).
    // Added in the same tick as the pipe, so no chunk flows past them.
    client.on('data', (chunk: Buffer) => { reach.bytesIn += chunk.length; reach.lastActivity = this.#clock.now(); });
    deviceStream.on('data', (chunk: Buffer) => { reach.bytesOut += chunk.length; reach.lastActivity = this.#clock.now(); });
    // Whichever side goes first says why, unless the relay itself ended the reach.
    client.once('end', () => { reach.why ??= 'client closed'; });
    client.once('close', () => { reach.why ??= 'client closed'; });
    deviceStream.once('end', () => { reach.why ??= 'device closed'; });
    deviceStream.once('close', () => { reach.why ??= 'device closed'; });
    if (this.#limits.sessionIdleTimeoutMs > 0) this.#armIdle(reach, this.#limits.sessionIdleTimeoutMs);
    // After the listeners above: the pipe's own 'close' listener finishes the reach, and by then the why must be known.
    pipe(client, deviceStream, reach.finish);
    return reach;
  }

  /** One timer per reach, re-armed for what is left of the timeout: no timer work per chunk. */
  #armIdle(reach: Reach, ms: number): void {
    reach.idle = this.#clock.setTimeout(() => {
      const quiet = this.#clock.now() - reach.lastActivity;
      const limit = this.#limits.sessionIdleTimeoutMs;
      if (quiet >= limit) this.#end(reach, 'idle timeout');
      else this.#armIdle(reach, limit - quiet);
    }, ms);
  }

  /**
   * Ends a reach from the relay's side. Its row is written now rather than when both
   * channels report 'close': ssh2 emits that only once the peer's CHANNEL_CLOSE has been
   * read, which a peer that is going away may never send.
   */
  #end(reach: Reach, why: ReachEndReason): void {
    reach.why ??= why;
    reach.close();
    reach.finish();
  }

  /** Ends every live reach for which `why` returns a reason (the caller's policy); returns how many. */
  endReaches(why: (r: ReachInfo) => ReachEndReason | null): number {
    let n = 0;
    for (const r of [...this.#reaches]) {
      const reason = why(r);
      if (reason !== null) { this.#end(r, reason); n++; }
    }
    return n;
  }

  /** The device's link `link` is gone: its reaches end as 'link lost' (called before their channels close). */
  linkClosed(link: object): void {
    for (const r of [...this.#reaches]) if (r.link === link) this.#end(r, 'link lost');
  }

  /**
   * Ends every connection for which `why` returns a reason, and its reaches with
   * 'access revoked: REASON'; returns how many connections.
   */
  endConnections(why: (p: Principal) => string | null): number {
    let n = 0;
    for (const c of [...this.#connections]) {
      const reason = why(c.principal);
      if (reason === null) continue;
      for (const r of [...c.reaches]) this.#end(r, `access revoked: ${reason}`);
      this.#connections.delete(c);
      c.end(reason);
      n++;
    }
    return n;
  }

  /** Ends everything: the relay is stopping (the rows are written now, while the store is open). */
  shutdown(): void {
    for (const r of [...this.#reaches]) this.#end(r, 'relay shutdown');
    for (const c of [...this.#connections]) c.end('relay shutdown');
    this.#connections.clear();
  }

  /** The live reaches now. */
  reaches(): ReachInfo[] { return [...this.#reaches]; }

  /**
   * Reaches started and bytes moved since the relay started, live and ended: summed when
   * asked (a scrape), so counting adds nothing to the data path.
   */
  totals(): { reaches: number; bytesIn: number; bytesOut: number } {
    const t = { ...this.#ended };
    for (const r of this.#reaches) {
      t.reaches++;
      t.bytesIn += r.bytesIn;
      t.bytesOut += r.bytesOut;
    }
    return t;
  }

  /** The live connections now. */
  connections(): LiveConnection[] { return [...this.#connections]; }
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n <= 0) m.delete(key); else m.set(key, n);
}

function remoteOf(p: Principal): string | null {
  return p.kind === 'local' ? null : p.remoteAddress;
}
