/** Who the relay thinks the principal is. */
import { principalName } from '../principal.ts';
import { subjectOf, type Operation } from './operation.ts';

/** The principal's name, roles and key; `role` is the first role, for scripts written before roles. */
export interface WhoamiResult { name: string; role: string | null; roles: string[]; keyFingerprint: string | null }

/** Who is asking. The local CLI is shown with the built-in admin role, whose every action it has. */
export const whoami: Operation<Record<string, never>, WhoamiResult> = {
  name: 'whoami',
  action: null,
  run(ctx, principal) {
    const roles = principal.kind === 'local' ? ['admin'] : subjectOf(ctx, principal).roles.map((r) => r.name);
    return { name: principalName(principal), role: roles[0] ?? null, roles, keyFingerprint: principal.kind === 'ssh' ? principal.keyFingerprint : null };
  },
};
