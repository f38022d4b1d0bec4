/**
 * Who may do what on the relay. Pure functions: values in, decisions out, no I/O.
 * The relay is never an open proxy: the only destinations are registered device names.
 */
import { DEVICE_SSH_PORT } from '../protocol/limits.ts';
import { hiddenDeviceRefusal, mayAct, mayReach as rolesReach, type Subject } from './access-policy.ts';
import { relaySsh } from './relay-address.ts';
import type { DeviceRecord } from './store.ts';

/** A refusal: `kind` picks the SSH failure code, `message` is what the operator reads. */
export interface Refusal { allow: false; kind: 'prohibited' | 'unavailable'; message: string }
export type Decision = { allow: true } | Refusal;

const ALLOW: Decision = { allow: true };

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/**
 * May `subject` open a channel to `host:port` through the relay? `device` is the store's
 * record for `host` (null when none), `online` whether it has a live link now, `seesAll`
 * whether the subject may list every device (`device.list`); `relayAddress` is the relay's
 * public HOST:PORT, for the hint in a refusal. The roles are asked first: a device outside
 * them is refused in the same words as one that does not exist (unless `seesAll`), so that
 * its status, labels and very existence stay hidden.
 */
export function mayReach(subject: Subject, seesAll: boolean, host: string, port: number, device: DeviceRecord | null, online: boolean, now: number, relayAddress: string): Decision {
  if (device === null) {
    const looksLikeAddress = /^[0-9.]+$/.test(host) || host.includes(':') || host === 'localhost';
    return {
      allow: false,
      kind: 'prohibited',
      message: looksLikeAddress
        ? `ferry connects only to device names, not to addresses like '${host}'; '${relaySsh(relayAddress, subject.user)} devices' lists them`
        : seesAll ? `no device named '${host}' is enrolled; 'devices' lists the names` : hiddenDeviceRefusal(subject, host),
    };
  }
  const roles = rolesReach(subject, device);
  if (!roles.allow) return { allow: false, kind: 'prohibited', message: seesAll ? roles.message : hiddenDeviceRefusal(subject, host) };
  if (device.status === 'pending') return { allow: false, kind: 'prohibited', message: `device '${host}' is waiting for approval: an admin runs 'device approve ${host}'` };
  if (device.status === 'revoked') return { allow: false, kind: 'prohibited', message: `device '${host}' is revoked` };
  if (port !== DEVICE_SSH_PORT) return { allow: false, kind: 'prohibited', message: `only port ${DEVICE_SSH_PORT} (the device's SSH target) is reachable through the relay, not ${port}; use 'ssh -L' inside the device session for other ports` };
  if (!online) {
    const seen = device.lastSeen === null ? 'never connected' : `last seen ${ago(now - device.lastSeen)}${device.lastDisconnectReason ? `, ${device.lastDisconnectReason}` : ''}`;
    return { allow: false, kind: 'unavailable', message: `device '${host}' is offline (${seen})` };
  }
  return ALLOW;
}

/**
 * `mayReach` as both front doors to a device (`ssh -J` and the console) ask it: whether the
 * subject may list every device is read from their roles, and a refusal carries `why`, the
 * same decision in full for the audit log (a device's labels included, which the operator
 * is not told unless they may list every device).
 */
export function reachDecision(subject: Subject, host: string, port: number, device: DeviceRecord | null, online: boolean, now: number, relayAddress: string): { allow: true } | (Refusal & { why: string }) {
  const seesAll = mayAct(subject, 'device.list').allow;
  const shown = mayReach(subject, seesAll, host, port, device, online, now, relayAddress);
  if (shown.allow) return shown;
  const full = seesAll ? shown : mayReach(subject, true, host, port, device, online, now, relayAddress);
  return { ...shown, why: full.allow ? shown.message : full.message };
}

/** Whether a device may hold its link: pending devices may (they show as waiting); revoked ones may not. */
export function mayHoldLink(device: DeviceRecord | null): Decision {
  if (device === null) return { allow: false, kind: 'prohibited', message: 'this agent key is not enrolled: enrol again with a new token' };
  if (device.status === 'revoked') return { allow: false, kind: 'prohibited', message: `device '${device.name}' is revoked` };
  return ALLOW;
}
