/**
 * GET /api/v1/events: the console's live view, as server-sent events. `device` (a
 * DeviceView, or `{ name, removed: true }`) when a device the user may see changes,
 * `resync` when users, roles or another process changed things (read the list again),
 * `session` (a SessionView) when a reach the user may see starts or ends, and a comment
 * line as a ping. Each stream is bounded: a few per user, and a reader that does not keep
 * up is dropped rather than buffered for (the page reconnects and reads the list again).
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { isFerryError } from '../../common/errors.ts';
import type { TimerHandle } from '../../common/clock.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { mayAct } from '../access-policy.ts';
import type { RelayContext } from '../context.ts';
import { perform, showDevice, subjectOf, type SessionView } from '../operations/index.ts';
import type { RelayEvent } from '../relay-events.ts';
import { operationContext } from './op-context.ts';
import { requireWeb } from './web-auth.ts';
import type { WebPrincipal } from './web-sessions.ts';

/** How long the browser waits before it reconnects a dropped stream (the SSE `retry` field). */
const RECONNECT_MS = 3_000;

/** A reach as the sessions list shows it, from the event the tracker fired. */
function sessionView(e: Extract<RelayEvent, { type: 'session' }>): SessionView {
  const r = e.reach;
  const end = e.end;
  return {
    id: r.id, user: r.user, device: r.device, kind: r.kind, login: r.login, startedAt: new Date(r.startedAt).toISOString(),
    endedAt: end ? new Date(end.at).toISOString() : null, durationMs: (end?.at ?? r.startedAt) - r.startedAt,
    bytesIn: r.bytesIn, bytesOut: r.bytesOut, endReason: end?.why ?? null, recordingId: r.recordingId, live: end === null,
  };
}

/** Registers GET /api/v1/events. */
export function registerEventRoutes(app: FastifyInstance, ctx: RelayContext): void {
  const perUser = new Map<string, Set<() => void>>();

  app.get('/api/v1/events', async (req, reply) => {
    const principal: WebPrincipal = requireWeb(req);
    const out = new PassThrough();
    let closed = false;
    let ping: TimerHandle | null = null;
    const mine = perUser.get(principal.user) ?? new Set<() => void>();
    perUser.set(principal.user, mine);
    const close = () => {
      if (closed) return;
      closed = true;
      off();
      ping?.cancel();
      ctx.sessions.disconnect(conn);
      mine.delete(close);
      if (mine.size === 0) perUser.delete(principal.user);
      out.end();
    };
    // One more than the cap ends the oldest: a user with a stuck tab can still open a new one.
    if (mine.size >= LIMITS.eventStreamsPerUser) [...mine][0]!();
    mine.add(close);
    // A tracker connection, so that a logout, user rm or the loss of the last key ends the stream.
    const conn = ctx.sessions.connect(principal, close);

    const write = (text: string) => {
      if (closed) return;
      // What the socket and this stream hold that the browser has not taken: past the bound,
      // the reader is too slow, and it is dropped rather than buffered for.
      if (out.readableLength + out.writableLength + reply.raw.writableLength > LIMITS.eventStreamMaxBufferedBytes) {
        ctx.log.info({ user: principal.user }, 'dropped a console event stream that did not keep up');
        return close();
      }
      out.write(text);
    };
    const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

    const off = ctx.events.on((e) => {
      const opCtx = operationContext(ctx);
      if (e.type === 'devices') return send('resync', {});
      if (e.type === 'device') {
        try {
          // The same rule as GET /devices/:name: what the user may see now, or nothing.
          send('device', perform(opCtx, principal, showDevice, { name: e.name }).device);
        } catch (err) {
          if (!isFerryError(err, 'FERRY_NOT_FOUND')) throw err;
          // Gone from the store: only those who may list every device learn that it went.
          if (ctx.store.getDevice(e.name) === null && mayAct(subjectOf(opCtx, principal), 'device.list').allow) send('device', { name: e.name, removed: true });
        }
        return;
      }
      if (e.reach.user !== principal.user && !mayAct(subjectOf(opCtx, principal), 'audit.read').allow) return;
      send('session', sessionView(e));
    });

    const pingEvery = Math.min(LIMITS.eventStreamPingMs, ctx.config.httpRequestTimeoutMs / 2);
    const arm = () => { ping = ctx.clock.setTimeout(() => { write(': ping\n\n'); if (!closed) arm(); }, pingEvery); };
    arm();
    reply.raw.once('close', close);
    reply.type('text/event-stream; charset=utf-8');
    // A proxy that buffers responses (nginx) would hold the events back.
    reply.header('x-accel-buffering', 'no');
    out.write(`retry: ${RECONNECT_MS}\n: ferry events for ${principal.user}\n\n`);
    return reply.send(out);
  });
}
