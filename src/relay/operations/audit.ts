/** The audit log: read it, verify its hash chain, export it as JSON lines. */
import type { AuditRecord, AuditVerdict } from '../store.ts';
import { badInput, iso, type Operation } from './operation.ts';
import { LIMITS } from '../../protocol/limits.ts';

/** Filters for reading the log; `action` is exact, or a prefix when it ends in `.*` (`reach.*`). */
export interface ReadAuditInput { since?: number; until?: number; device?: string; user?: string; action?: string; limit?: number; beforeId?: number }

/** An audit row as shown: the time as ISO text. */
export type AuditView = Omit<AuditRecord, 'at'> & { at: string };

/** One row for output. */
export function auditView(a: AuditRecord): AuditView { return { ...a, at: iso(a.at)! }; }

/** Every problem with an audit query (no side effects): the front end merges them with its own. */
export function readAuditProblems(input: ReadAuditInput): string[] {
  const limit = input.limit ?? LIMITS.auditDefaultLimit;
  const problems: string[] = [];
  if (!Number.isInteger(limit) || limit < 1 || limit > LIMITS.auditMaxLimit) problems.push(`--limit must be a whole number from 1 to ${LIMITS.auditMaxLimit}`);
  if (input.since !== undefined && input.until !== undefined && input.until < input.since) problems.push('--until is before --since: nothing can match');
  return problems;
}

/** The newest rows that match, oldest first. */
export const readAudit: Operation<ReadAuditInput, AuditView[]> = {
  name: 'audit.read',
  action: 'audit.read',
  run(ctx, _principal, input) {
    badInput(readAuditProblems(input));
    const limit = input.limit ?? LIMITS.auditDefaultLimit;
    return ctx.store.listAudit({ since: input.since, until: input.until, device: input.device, user: input.user, action: input.action, beforeId: input.beforeId, limit }).map(auditView);
  },
};

/** Walks the whole chain: every row's hash, every link, and the head. */
export const verifyAudit: Operation<Record<string, never>, AuditVerdict> = {
  name: 'audit.verify',
  action: 'audit.verify',
  run(ctx) { return ctx.store.verifyAudit(); },
};

/** Every row from `since` on, oldest first, streamed (for a SIEM). */
export const exportAudit: Operation<{ since?: number }, IterableIterator<AuditView>> = {
  name: 'audit.export',
  action: 'audit.read',
  run(ctx, _principal, { since }) {
    return (function* rows() {
      for (const row of ctx.store.iterateAudit()) if (since === undefined || row.at >= since) yield auditView(row);
    })();
  },
};
