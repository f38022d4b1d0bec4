/**
 * The shapes the console's HTTP API (/api/v1, docs/api.md) answers with, as the browser sees
 * them. They mirror the relay's views (relay/operations/): the browser code may not import
 * relay/, so a change to a view there must be made here too.
 */
import type { Action } from '../protocol/access-rules.ts';

/** GET /me: who is signed in, what they may do, and the CSRF token every change must carry. */
export interface Me {
  user: string;
  roles: string[];
  /** The relay actions this user's roles grant (docs/security.md lists them). */
  actions: Action[];
  csrf: string;
  expiresAt: string;
  relay: { publicUrl: string; sshAddress: string; fingerprint: string };
}

/** A device's approval state. */
export type DeviceStatus = 'pending' | 'approved' | 'revoked';

/** A device as every front end shows it (the `devices --json` shape). */
export interface DeviceView {
  name: string;
  status: DeviceStatus;
  online: boolean;
  connectedSince: string | null;
  lastSeen: string | null;
  remoteAddress: string | null;
  agentVersion: string | null;
  lastDisconnectReason: string | null;
  labels: Record<string, string>;
  keyFingerprint: string;
  cloned: boolean | null;
  cloneAddresses: string[];
}

/** GET /devices: one page of the matching devices. */
export interface DevicesPage { devices: DeviceView[]; total: number; visible: number; offset: number; limit: number }

/** GET /devices/:name: the device, the logins this user may use on it, and whether the console can open it. */
export interface DeviceDetail {
  device: DeviceView;
  logins: string[];
  console: { available: boolean; why: string | null };
}

/** A reach (ssh -J or console), live or past. */
export interface SessionView {
  id: string;
  user: string;
  device: string;
  kind: 'jump' | 'console';
  login: string | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  endReason: string | null;
  recordingId: string | null;
  live: boolean;
}

/** A console recording (asciicast v2 file on the relay). */
export interface RecordingView {
  id: string;
  sessionId: string;
  device: string;
  user: string;
  login: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  path: string;
  bytes: number | null;
  sha256: string | null;
}

/** An audit log row. */
export interface AuditView {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  source: unknown;
  prevHash: string;
  hash: string;
}

/** GET /audit/verify. */
export type AuditVerdict =
  | { ok: true; rows: number; head: string | null }
  | { ok: false; rows: number; badId: number; problem: string };

/** An enrollment token as listed (never its secret). */
export interface TokenView {
  id: string;
  name: string | null;
  labels: Record<string, string>;
  usesLeft: number;
  expiresAt: string;
  createdBy: string;
  createdAt: string;
  approve: boolean;
  state: 'usable' | 'expired' | 'used up' | 'revoked';
  revokedAt: string | null;
}

/** A relay user. */
export interface UserView { name: string; role: string | null; roles: string[]; createdAt: string; keys: string[] }

/** POST /tokens: the new token (its secret, shown only this once) and the exact agent command that uses it. */
export interface CreatedToken {
  token: string;
  id: string;
  expiresAt: string;
  uses: number;
  name: string | null;
  labels: Record<string, string>;
  approve: boolean;
  relay: string;
  fingerprint: string;
  agentCommand: string;
}

/** A role: which devices, logins, forward targets and relay actions it grants, and who has it. */
export interface RoleView {
  name: string;
  devices: string[];
  logins: string[];
  forwards: string[];
  actions: string[];
  users: string[];
  createdAt: string;
  updatedAt: string;
}
