/** Devices: list what the principal may reach, approve, revoke, remove, label. */
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { labelKeyProblem, parseLabels } from '../../protocol/names.ts';
import { mayAct, mayReach, type Subject } from '../access-policy.ts';
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

/** Filters for `listDevices`: every label given must match; `online` true/false picks by presence. */
export interface ListDevicesInput { labels?: Record<string, string>; online?: boolean }

/** The visible devices matching the filters, and how many are visible at all. */
export const listDevices: Operation<ListDevicesInput, { devices: DeviceView[]; visible: number }> = {
  name: 'device.list',
  action: null,
  run(ctx, principal, input) {
    const all = visibleDevices(ctx, subjectOf(ctx, principal));
    const wanted = Object.entries(input.labels ?? {});
    const list = all.filter((d) => (input.online === undefined || (d.onlineSince !== null) === input.online) && wanted.every(([k, v]) => d.labels[k] === v));
    return { devices: list.map((d) => view(d, ctx.now, ctx.cloneOf?.(d.name))), visible: all.length };
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
