/** A device's state at a glance: online or offline (a dot and a word, never colour alone), and its approval. */
import type { JSX } from 'preact';
import type { DeviceView } from '../api-types.ts';

/** "● online" or "○ offline". */
export function OnlineBadge({ online }: { online: boolean }): JSX.Element {
  return <span class={online ? 'badge badge-online' : 'badge badge-offline'}><span aria-hidden="true">{online ? '●' : '○'}</span> {online ? 'online' : 'offline'}</span>;
}

/** approved, pending (waiting for approval) or revoked. */
export function StatusBadge({ status }: { status: DeviceView['status'] }): JSX.Element {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

/** A device's labels as key=value chips. */
export function Labels({ labels }: { labels: Record<string, string> }): JSX.Element {
  const entries = Object.entries(labels);
  if (entries.length === 0) return <span class="muted">—</span>;
  return <span class="labels">{entries.map(([k, v]) => <span key={k} class="label">{k}={v}</span>)}</span>;
}
