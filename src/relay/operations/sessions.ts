/**
 * Sessions (reaches) as the console lists them: the live ones from the running relay's
 * tracker, and past ones from the audit log's reach.end rows, which carry everything a
 * session's line needs (start, length, bytes, why it ended).
 */
import { LIMITS } from '../../protocol/limits.ts';
import { mayAct } from '../access-policy.ts';
import type { ReachInfo, ReachKind } from '../sessions.ts';
import type { AuditRecord } from '../store.ts';
import { badInput, iso, subjectOf, type Operation } from './operation.ts';

/** One session, live or past. `bytesIn` went from the operator to the device, `bytesOut` back. */
export interface SessionView {
  id: string; user: string; device: string; kind: ReachKind; login: string | null;
  startedAt: string; endedAt: string | null; durationMs: number; bytesIn: number; bytesOut: number;
  endReason: string | null; recordingId: string | null; live: boolean;
}

/** Which sessions: `live` true for live only, false for past only, absent for both; newest first, at most `limit`. */
export interface ListSessionsInput { live?: boolean; device?: string; user?: string; limit?: number }

/** Every problem with a sessions query (no side effects). */
export function listSessionsProblems(input: ListSessionsInput): string[] {
  const limit = input.limit ?? LIMITS.auditDefaultLimit;
  return Number.isInteger(limit) && limit >= 1 && limit <= LIMITS.auditMaxLimit ? [] : [`limit must be a whole number from 1 to ${LIMITS.auditMaxLimit}, not ${limit}`];
}

function liveView(r: ReachInfo, now: number, recordingOf: (session: string) => string | null): SessionView {
  return {
    id: r.id, user: r.user, device: r.device, kind: r.kind, login: r.login, startedAt: iso(r.startedAt)!, endedAt: null,
    durationMs: now - r.startedAt, bytesIn: r.bytesIn, bytesOut: r.bytesOut, endReason: null, recordingId: r.recordingId ?? recordingOf(r.id), live: true,
  };
}

function pastView(row: AuditRecord, recordingOf: (session: string) => string | null): SessionView {
  const d = row.detail;
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  const id = String(d.session ?? row.id);
  const started = typeof d.started === 'number' ? d.started : row.at - num(d.durationMs);
  return {
    id, user: row.actor, device: row.target ?? '', kind: d.kind === 'console' ? 'console' : 'jump', login: typeof d.login === 'string' ? d.login : null,
    startedAt: iso(started)!, endedAt: iso(row.at), durationMs: num(d.durationMs), bytesIn: num(d.bytesIn), bytesOut: num(d.bytesOut),
    endReason: typeof d.why === 'string' ? d.why : null,
    // The reach rows name a console session's recording as `recording`.
    recordingId: typeof d.recording === 'string' ? d.recording : recordingOf(id), live: false,
  };
}

/**
 * Live and past sessions, newest first. A user without audit.read sees only their own (the
 * audit log is where past ones come from); the live ones are known only to the running relay.
 */
export const listSessions: Operation<ListSessionsInput, { sessions: SessionView[] }> = {
  name: 'session.list',
  action: null,
  run(ctx, principal, input) {
    badInput(listSessionsProblems(input));
    const limit = input.limit ?? LIMITS.auditDefaultLimit;
    const all = principal.kind === 'local' || mayAct(subjectOf(ctx, principal), 'audit.read').allow;
    const user = all ? input.user : principal.user;
    if (!all && input.user !== undefined && input.user !== principal.user) return { sessions: [] };
    const matches = (s: { user: string; device: string }) => (user === undefined || s.user === user) && (input.device === undefined || s.device === input.device);
    // Console sessions' recordings, by the session they belong to: one query, not one per row.
    const recordings = new Map(ctx.store.listRecordings({ device: input.device, user, limit: LIMITS.recordingsListLimit }).map((r) => [r.sessionId, r.id]));
    const recordingOf = (session: string) => recordings.get(session) ?? null;
    const live = input.live === false ? [] : (ctx.liveReaches?.() ?? []).filter(matches).sort((a, b) => b.startedAt - a.startedAt).map((r) => liveView(r, ctx.now, recordingOf));
    const past = input.live === true ? [] : ctx.store.listAudit({ action: 'reach.end', device: input.device, user, limit }).reverse().map((row) => pastView(row, recordingOf));
    return { sessions: [...live, ...past].slice(0, limit) };
  },
};
