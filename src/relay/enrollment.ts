/**
 * An enrolling agent's connection: it proved it holds a new key, and may now trade a token
 * for a device identity bound to that key, in one exec. Nothing else.
 */
import { createHash } from 'node:crypto';
import type { Connection } from 'ssh2';
import { isFerryError } from '../common/errors.ts';
import { parsePublicKey, type PublicKey } from '../common/ssh-keys.ts';
import { LIMITS } from '../protocol/limits.ts';
import { deviceNameProblem } from '../protocol/names.ts';
import { parseEnrollCommand, type EnrollResponse } from '../protocol/enrollment.ts';
import type { RelayContext } from './context.ts';

/** Serves one enrollment connection. */
export function serveEnrollment(ctx: RelayContext, conn: Connection, key: PublicKey, remote: { address: string }): void {
  const log = ctx.log.child({ enroll: key.fingerprint, remote: remote.address });
  let used = false;
  conn.on('error', (err) => log.debug({ err: err.message }, 'enrollment connection error'));
  conn.on('tcpip', (_a, reject) => reject());
  conn.on('request', (_a, reject) => reject?.());
  conn.on('session', (accept) => {
    const session = accept();
    session.on('exec', (acceptExec, rejectExec, info) => {
      const req = Buffer.byteLength(info.command) <= LIMITS.maxCommandBytes ? parseEnrollCommand(info.command) : null;
      if (used || req === null) return rejectExec();
      used = true;
      const ch = acceptExec();
      let answer: EnrollResponse;
      const nameProblem = [req.name, req.hostname].map((n) => (n === null ? null : deviceNameProblem(n))).find((p) => p !== null) ?? null;
      let hostKeyLine: string | null = null;
      let hostKeyProblem: string | null = null;
      if (req.hostKey != null) {
        try { hostKeyLine = parsePublicKey(req.hostKey).line; } catch (err) { hostKeyProblem = `the device's host key: ${(err as Error).message}`; }
      }
      if (nameProblem || hostKeyProblem) {
        answer = { ok: false, code: 'FERRY_TOKEN_REFUSED', message: (nameProblem ?? hostKeyProblem)! };
      } else {
        try {
          const now = ctx.clock.now();
          // The device and its audit row commit together: no device appears without its record.
          const device = ctx.store.transaction(() => {
            const d = ctx.store.redeemToken({
              id: req.tokenId, secretHash: createHash('sha256').update(req.secret).digest(),
              requestedName: req.name, fallbackName: req.hostname, keyFingerprint: key.fingerprint, keyLine: key.line, hostKeyLine, now,
            });
            ctx.store.audit({ at: now, actor: d.name, action: 'device.enroll', target: d.name, detail: { token: req.tokenId, key: key.fingerprint, status: d.status, remote: remote.address } });
            return d;
          });
          log.info({ device: device.name, status: device.status }, 'device enrolled');
          answer = { ok: true, name: device.name, status: device.status === 'approved' ? 'approved' : 'pending' };
        } catch (err) {
          if (!isFerryError(err)) log.error({ err }, 'enrollment failed unexpectedly');
          answer = isFerryError(err) ? { ok: false, code: err.code, message: err.message } : { ok: false, code: 'FERRY_STORE', message: 'the relay could not enrol the device; its log has the details' };
          ctx.store.audit({ at: ctx.clock.now(), actor: `enroll:${key.fingerprint}`, action: 'device.enroll.refused', target: null, detail: { token: req.tokenId, why: answer.message, remote: remote.address } });
        }
      }
      ch.write(JSON.stringify(answer) + '\n');
      ch.exit(answer.ok ? 0 : 1);
      ch.end();
    });
  });
}
