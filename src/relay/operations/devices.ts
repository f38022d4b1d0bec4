/** Devices: list what the principal may reach, approve, revoke, remove, label. */
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { labelKeyProblem, parseLabels } from '../../protocol/names.ts';
import { grantFor, hiddenDeviceRefusal, mayAct, mayReach, type Subject } from '../access-policy.ts';
import type { CloneEpisode } from '../clone-detector.ts';
import { principalName } from '../principal.ts';
import type { DeviceRecord } from '../store.ts';
import { badInput, iso, subjectOf, type Operation, type OperationContext } from './operation.ts';

/** A device as every front end shows it (the `devices --json` shape). */
export interface DeviceView {
  name: string;
  status: DeviceRecord['status'];
  online: boolean;
  connectedSince: string | null;
  lastSeen: string | null;
  remoteAddress: string | null;
  agentVersion: string | null;
  lastDisconnectReason: string | null;
  labels: Record<string, string>;
  keyFingerprint: string;
  /** null: not known here (the local CLI has no view of the relay's memory). */
  cloned: boolean | null;
  cloneAddresses: string[];
}

function view(d: DeviceRecord, now: number, clone: CloneEpisode | null | undefined): DeviceView {
  return {
    name: d.name, status: d.status, online: d.onlineSince !== null, connectedSince: iso(d.onlineSince),
    lastSeen: d.onlineSince !== null ? iso(now) : iso(d.lastSeen), remoteAddress: d.remoteAddress, agentVersion: d.agentVersion,
    lastDisconnectReason: d.lastDisconnectReason, labels: d.labels, keyFingerprint: d.keyFingerprint,
    cloned: clone === undefined ? null : clone !== null, cloneAddresses: [...(clone?.addresses ?? [])],
  };
}

/** The devices `subject` may see: all with device.list, else those its roles let it reach. */
export function visibleDevices(ctx: OperationContext, subject: Subject): DeviceRecord[] {
  const all = ctx.store.listDevices();
  return mayAct(subject, 'device.list').allow ? all : all.filter((d) => mayReach(subject, d).allow);
}

/**
 * Filters for `listDevices`: every label given must match; `online` true/false picks by
 * presence; `q` is a case-insensitive substring of the name; `status` an approval state.
 * `offset` and `limit` cut one page (none: every match); `onlineFirst` puts online devices
 * before offline ones (the console's order), else the order is by name.
 */
export interface ListDevicesInput {
  labels?: Record<string, string>; online?: boolean; q?: string; status?: DeviceRecord['status'];
  offset?: number; limit?: number; onlineFirst?: boolean;
}

/** Every problem with a device query (no side effects). */
export function listDevicesProblems(input: ListDevicesInput): string[] {
  const problems: string[] = [];
  if (input.offset !== undefined && (!Number.isInteger(input.offset) || input.offset < 0)) problems.push(`offset must be a whole number of at least 0, not ${input.offset}`);
  if (input.limit !== undefined && (!Number.isInteger(input.limit) || input.limit < 1 || input.limit > LIMITS.apiMaxPageSize)) problems.push(`limit must be a whole number from 1 to ${LIMITS.apiMaxPageSize}, not ${input.limit}`);
  if (input.status !== undefined && !['pending', 'approved', 'revoked'].includes(input.status)) problems.push(`status '${input.status}' is not one of pending, approved, revoked`);
  return problems;
}

/** The visible devices matching the filters (one page of them), how many match, and how many are visible at all. */
export const listDevices: Operation<ListDevicesInput, { devices: DeviceView[]; total: number; visible: number }> = {
  name: 'device.list',
  action: null,
  run(ctx, principal, input) {
    badInput(listDevicesProblems(input));
    const all = visibleDevices(ctx, subjectOf(ctx, principal));
    const wanted = Object.entries(input.labels ?? {});
    const q = input.q?.toLowerCase() ?? '';
    const list = all.filter((d) => (input.online === undefined || (d.onlineSince !== null) === input.online)
      && (input.status === undefined || d.status === input.status)
      && (q === '' || d.name.includes(q))
      && wanted.every(([k, v]) => d.labels[k] === v));
    // The store lists by name, and the sort is stable: online first, then by name.
    if (input.onlineFirst) list.sort((a, b) => Number(b.onlineSince !== null) - Number(a.onlineSince !== null));
    const offset = input.offset ?? 0;
    const page = list.slice(offset, input.limit === undefined ? undefined : offset + input.limit);
    return { devices: page.map((d) => view(d, ctx.now, ctx.cloneOf?.(d.name))), total: list.length, visible: all.length };
  },
};

/** One device, what the principal may log in to it as, and whether the console can open a terminal on it. */
export interface DeviceDetail {
  device: DeviceView;
  /** Login patterns the principal's roles allow on it ('*': any). */
  logins: string[];
  /** Whether a console terminal can be opened now, and if not, why (in words for the operator). */
  console: { available: boolean; why: string | null };
}

/**
 * One device the principal may see. A device they may not see is refused exactly as one
 * that does not exist, so that a refusal reveals neither.
 */
export const showDevice: Operation<{ name: string }, DeviceDetail> = {
  name: 'device.show',
  action: null,
  run(ctx, principal, { name }) {
    const subject = subjectOf(ctx, principal);
    const seesAll = mayAct(subject, 'device.list').allow;
    const device = ctx.store.getDevice(name);
    if (!device || (!seesAll && !mayReach(subject, device).allow)) {
      throw new FerryError('FERRY_NOT_FOUND', seesAll ? `no device named '${name}'; 'devices' lists them` : hiddenDeviceRefusal(subject, name));
    }
    const logins = grantFor(subject, device)?.logins ?? [];
    let why: string | null = null;
    if (device.status !== 'approved') why = `device '${name}' is ${device.status}: it must be approved first`;
    else if (logins.length === 0) why = `your roles allow no login on '${name}'`;
    else if (device.onlineSince === null) why = `device '${name}' is offline${device.lastDisconnectReason ? ` (${device.lastDisconnectReason})` : ''}`;
    // Whether the device runs the built-in server (a console) or its own sshd the relay
    // learns only when it opens the session: the terminal says so then.
    return { device: view(device, ctx.now, ctx.cloneOf?.(name)), logins, console: { available: why === null, why } };
  },
};

function existing(ctx: OperationContext, name: string): DeviceRecord {
  const device = ctx.store.getDevice(name);
  if (!device) throw new FerryError('FERRY_NOT_FOUND', `no device named '${name}'; 'devices' lists them`);
  return device;
}

/** What a status change or removal did. */
export interface DeviceChange { name: string; result: 'approved' | 'revoked' | 'removed' }

function statusChange(verb: 'approve' | 'revoke' | 'remove'): Operation<{ name: string }, DeviceChange> {
  const result = verb === 'approve' ? 'approved' : verb === 'revoke' ? 'revoked' : 'removed';
  return {
    name: `device.${verb}`,
    action: `device.${verb}`,
    targetOf: (i) => i.name,
    run(ctx, principal, { name }) {
      const device = existing(ctx, name);
      if (verb === 'approve' && device.status === 'revoked') {
        throw new FerryError('FERRY_CONFLICT', `device '${name}' is revoked; a revoked device cannot be approved again: 'device rm ${name}' and enrol it anew`);
      }
      ctx.store.transaction(() => {
        if (verb === 'remove') ctx.store.removeDevice(name);
        else ctx.store.setDeviceStatus(name, verb === 'approve' ? 'approved' : 'revoked');
        ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: `device.${verb}`, target: name, detail: { was: device.status } });
      });
      ctx.onChange?.(name);
      return { name, result };
    },
  };
}

/** Lets a pending device in. */
export const approveDevice = statusChange('approve');
/** Shuts a device out: its link ends, and it cannot come back. */
export const revokeDevice = statusChange('revoke');
/** Forgets a device, so that its name can be enrolled anew. */
export const removeDevice = statusChange('remove');

/** Labels to set (key → value) and to remove, on one device. */
export interface LabelDeviceInput { name: string; set: Record<string, string>; remove: string[] }

/** Every problem with a label change (no side effects): the front end merges them with its own. */
export function labelDeviceProblems({ set, remove }: LabelDeviceInput): string[] {
  // The same rules as token create's labels.
  const problems = [...parseLabels(Object.entries(set).map(([k, v]) => `${k}=${v}`)).problems];
  if (Object.keys(set).length === 0 && remove.length === 0) problems.push('give at least one label: key=value to set it, key- to remove it');
  for (const key of remove) {
    const p = labelKeyProblem(key);
    if (p) problems.push(p);
    else if (key in set) problems.push(`label '${key}' is both set and removed`);
  }
  return problems;
}

/** Sets and removes a device's labels; a role whose selectors match them covers it from now on. */
export const labelDevice: Operation<LabelDeviceInput, { name: string; labels: Record<string, string> }> = {
  name: 'device.label',
  action: 'device.label',
  targetOf: (i) => i.name,
  run(ctx, principal, { name, set, remove }) {
    const problems = labelDeviceProblems({ name, set, remove });
    badInput(problems);
    const device = existing(ctx, name);
    const labels = { ...device.labels, ...set };
    for (const key of remove) delete labels[key];
    if (Object.keys(labels).length > LIMITS.maxLabels) badInput([`too many labels: at most ${LIMITS.maxLabels}`]);
    ctx.store.transaction(() => {
      ctx.store.setDeviceLabels(name, labels);
      ctx.store.audit({ at: ctx.now, actor: principalName(principal), action: 'device.label', target: name, detail: { set, removed: remove } });
    });
    // Labels decide which roles cover the device: its key list and live reaches follow.
    ctx.onChange?.(name);
    return { name, labels };
  },
};
