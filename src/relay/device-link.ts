/**
 * A device's authenticated connection: it may register its one tunnel and nothing else.
 * The relay keys the link on the device's identity, never on a port: a newer link
 * replaces the old one at once.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Connection } from 'ssh2';
import { FerryError } from '../common/errors.ts';
import { DEVICE_SSH_PORT } from '../protocol/limits.ts';
import { OPEN_FAILURE, rejectWithMessage, socketOf } from '../net/ssh2-internals.ts';
import { AUTHORIZED_KEYS_COMMAND, encodeAuthorizedKeys, type AuthorizedKey } from '../protocol/authorized-keys.ts';
import type { RelayContext } from './context.ts';
import { authorizedKeysFor } from './access-policy.ts';
import type { Link } from './registry.ts';
import { AuditRateLimit } from './audit-rate.ts';
import { parseReports, reportAuditEntry, ReportLines } from './device-reports.ts';
import type { DisconnectReason } from './store.ts';

/** How long a closed link's socket may take to flush its goodbye before it is destroyed. */
const CLOSE_FLUSH_MS = 1_000;

/** Serves an authenticated device connection until it closes. */
export function serveDeviceLink(ctx: RelayContext, conn: Connection, device: string, remote: { address: string; port: number }, agent: { version: string | null; instance: string | null; transport: 'tcp' | 'wss' }): void {
  const agentVersion = agent.version;
  let link: (Link & { reason: DisconnectReason | null }) | null = null;
  /** Where notices for the agent go: the key watch's stderr, once it is open. */
  let notices: { write(text: string): unknown; writable: boolean } | null = null;
  let keepaliveTimedOut = false;
  const log = ctx.log.child({ device, remote: remote.address });

  conn.on('error', (err: Error & { level?: string }) => {
    if (err.level === 'client-timeout') keepaliveTimedOut = true;
    log.debug({ err: err.message }, 'device connection error');
  });

  // A device identity may hold a tunnel and watch who may log in to it; nothing else:
  // no shell, no other exec, no forwarding. The watch belongs to the registered link: a
  // second connection with the same key (a clone, or a stolen key) must not take the live
  // agent's updates away, so it gets a watch only once it holds the registration, and a
  // replaced link's watch ends with its connection.
  let watching = false;
  conn.on('session', (accept) => {
    const session = accept();
    session.on('exec', (acceptExec, rejectExec, info) => {
      if (info.command !== AUTHORIZED_KEYS_COMMAND || watching) return rejectExec();
      if (link === null || ctx.registry.get(device) !== link) {
        log.info('refused an operator-key watch from a connection that is not the registered link');
        return rejectExec();
      }
      watching = true;
      const ch = acceptExec();
      notices = ch.stderr;
      let last = '';
      const push = (keys: AuthorizedKey[]) => {
        const line = encodeAuthorizedKeys({ keys });
        if (line !== last && ch.writable) ch.write((last = line));
      };
      ctx.keyWatchers.set(device, push);
      ch.on('close', () => { if (ctx.keyWatchers.get(device) === push) ctx.keyWatchers.delete(device); });
      ch.on('error', () => {});
      readReports(ctx, device, ch, log);
      push(authorizedKeysFor(ctx.store.getDevice(device), ctx.store.listSubjects()));
    });
    for (const request of ['pty', 'shell', 'subsystem', 'env', 'x11', 'auth-agent'] as const) {
      session.on(request, (_a: unknown, rejectRequest: () => void) => rejectRequest?.());
    }
  });
  conn.on('tcpip', (_accept, reject) => rejectWithMessage(conn, reject, OPEN_FAILURE.prohibited, 'device keys may not open channels'));
  conn.on('openssh.streamlocal', (_accept, reject) => reject());

  conn.on('request', (accept, reject, name, info) => {
    const bind = info as { bindAddr?: string; bindPort?: number };
    if (name === 'tcpip-forward' && bind.bindAddr === device && bind.bindPort === DEVICE_SSH_PORT && link === null) {
      const admitted = ctx.registry.mayRegister(device, { instance: agent.instance, address: remote.address });
      if (!admitted.allow) {
        // Debug level: the episode was logged as a warning when it started.
        log.debug({ retryInMs: admitted.retryInMs }, 'refused a link: another machine with this identity holds it (clone hold-off)');
        reject?.();
        return;
      }
      link = makeLink(ctx, conn, device, remote.address, agent.instance, (text) => { if (notices?.writable) notices.write(text); });
      const { replaced: old, cloneEpisodeStarted } = ctx.registry.register(link);
      const clone = ctx.registry.cloneOf(device);
      if (cloneEpisodeStarted) {
        log.warn({ addresses: clone?.addresses },
          `device '${device}' is connecting from more than one machine with the same identity (a copied state dir?), and they keep replacing each other: `
          + `re-enroll all but one with a new token (delete their state dir first). Until then the relay holds each off for a while after a replace`);
      }
      if (old && clone) {
        old.notify(`this device's identity is in use by another machine at ${remote.address}: re-enroll one of them with a new token (delete its state dir). `
          + `The relay holds the other machine off for a while after each replace, so this device will be unreachable now and then\n`);
      }
      const now = ctx.clock.now();
      // Presence and its audit row together: one commit, never one without the other.
      ctx.store.transaction(() => {
        ctx.store.markOnline(device, now, remote.address, agentVersion, old !== undefined);
        ctx.store.audit({ at: now, actor: device, action: 'device.connect', target: device, detail: { remote: remote.address, agentVersion, transport: agent.transport, replaced: old !== undefined } });
      });
      old?.close('replaced by a newer link');
      ctx.events.emit({ type: 'device', name: device });
      log.info({ replaced: old !== undefined, ...(clone ? { clone: true } : {}) }, 'device online');
      accept?.();
      return;
    }
    if (name === 'cancel-tcpip-forward' && link !== null && bind.bindAddr === device) {
      // The agent says goodbye before it ends the connection (SIGTERM): remember why.
      link.reason ??= 'agent closed';
      accept?.();
      return;
    }
    log.warn({ request: name, bindAddr: bind.bindAddr }, 'refused a request from a device');
    reject?.();
  });

  conn.on('close', () => {
    if (link === null) return;
    // Before the link's channels close (ssh2 closes them after this event): its reaches end as 'link lost'.
    ctx.sessions.linkClosed(link);
    const reason: DisconnectReason = link.reason ?? (keepaliveTimedOut ? 'keepalive timeout' : 'connection lost');
    if (ctx.registry.unregister(link)) {
      const now = ctx.clock.now();
      // A device removed from the store has no row left to update.
      ctx.store.transaction(() => {
        if (reason !== 'removed') ctx.store.markOffline(device, now, reason);
        ctx.store.audit({ at: now, actor: device, action: 'device.disconnect', target: device, detail: { reason } });
      });
      ctx.events.emit({ type: 'device', name: device });
      log.info({ reason }, 'device offline');
    } else {
      log.info({ reason }, 'old link closed');
    }
  });
}

function makeLink(ctx: RelayContext, conn: Connection, device: string, remoteAddress: string, instance: string | null, notify: (text: string) => void): Link & { reason: DisconnectReason | null } {
  const link = {
    device,
    since: ctx.clock.now(),
    remoteAddress,
    instance,
    notify,
    reason: null as DisconnectReason | null,
    openChannel(origin: { address: string; port: number }, timeoutMs: number): Promise<Duplex> {
      return new Promise((resolve, reject) => {
        let settled = false;
        // ssh2 fails a pending channel open only when the socket closes; a stuck agent
        // must not hold the operator forever.
        const timer = ctx.clock.setTimeout(() => {
          settled = true;
          ctx.channelStats.failed++;
          reject(new FerryError('FERRY_TIMEOUT', `device '${device}' did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        ctx.channelStats.opened++;
        conn.forwardOut(device, DEVICE_SSH_PORT, origin.address, origin.port, (err, stream) => {
          if (settled) {
            stream?.close();
            return;
          }
          settled = true;
          timer.cancel();
          if (err) {
            ctx.channelStats.failed++;
            reject(new FerryError('FERRY_CONNECT_FAILED', `device '${device}' could not reach its SSH target: ${err.message.replace(/^\(SSH\) Channel open failure: ?/, '') || 'no reason given'}`));
          } else {
            resolve(stream);
          }
        });
      });
    },
    close(reason: DisconnectReason) {
      if (link.reason === null || link.reason === 'agent closed') link.reason = reason;
      conn.end();
      const sock = socketOf(conn);
      // A half-open peer (power cut, frozen process) never answers our FIN; do not wait for it.
      if (sock) ctx.clock.setTimeout(() => sock.destroy(), CLOSE_FLUSH_MS);
    },
  };
  return link;
}

/**
 * Reads the device's reports (device-report.ts) from its key-watch channel and records each
 * as an `ssh.EVENT` row marked as the device's word. Bounded: one unfinished line at most,
 * and so many rows per window, then one summary row, so that a device cannot flood the log.
 */
function readReports(ctx: RelayContext, device: string, ch: Readable, log: RelayContext['log']): void {
  const lines = new ReportLines();
  const record = (entry: ReturnType<typeof reportAuditEntry>) => ctx.store.audit(entry);
  const limit = new AuditRateLimit(ctx.clock, ctx.config.deviceReportAudit, (left) => record({
    at: ctx.clock.now(), actor: device, action: 'ssh.reports.dropped', target: device, source: 'device',
    detail: { suppressed: left.suppressed, from: left.from, until: left.until, why: `the device sent ${left.suppressed} more reports in this window than the relay records (rate limit)` },
  }));
  let bad = 0;
  ch.on('data', (chunk: Buffer) => {
    const parsed = parseReports(lines.push(chunk));
    if (parsed.bad > 0 && bad === 0) log.info('the device sent a report line the relay cannot read; it is skipped (a newer agent?)');
    bad += parsed.bad;
    for (const r of parsed.reports) if (limit.take()) record(reportAuditEntry(device, r, ctx.clock.now()));
  });
  ch.once('close', () => limit.flush());
}
