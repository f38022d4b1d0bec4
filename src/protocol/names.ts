/** Device names, user names and labels: what is valid and why. Pure; runs anywhere. */

import { LIMITS } from './limits.ts';

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/;
const LABEL_KEY = /^[a-z0-9](?:[a-z0-9_./-]*[a-z0-9])?$/;

/** SSH user names the relay keeps for itself: agents log in with these, never people. */
export const AGENT_LOGIN = 'ferry-agent';
export const ENROLL_LOGIN = 'ferry-enroll';

/**
 * Operators may write a device as NAME or NAME.ferry: the suffix lets one `Host *.ferry`
 * block in ssh_config send every device through the relay.
 */
export const DEVICE_HOST_SUFFIX = '.ferry';

/** The device name an operator meant by `host` (lowercased, without the .ferry suffix). */
export function deviceNameFromHost(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith(DEVICE_HOST_SUFFIX) ? h.slice(0, -DEVICE_HOST_SUFFIX.length) : h;
}

/** Why a device name is invalid, or null when it is valid. */
export function deviceNameProblem(name: string): string | null {
  if (DNS_LABEL.test(name)) return null;
  if (name.toLowerCase() !== name && DNS_LABEL.test(name.toLowerCase())) {
    return `device name '${name}' has upper-case letters; OpenSSH lowercases host names, so use '${name.toLowerCase()}'`;
  }
  return `device name '${name}' is not a DNS label: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'`;
}

/** Why an operator user name is invalid, or null when it is valid. */
export function userNameProblem(name: string): string | null {
  if (name.startsWith('ferry-')) return `user name '${name}' is reserved: names starting with 'ferry-' belong to agents`;
  if (USER_NAME.test(name)) return null;
  return `user name '${name}' is invalid: use up to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or '_'`;
}

/** A device name derived from a host name, or null when nothing usable is left. */
export function deviceNameFromHostname(hostname: string): string | null {
  // Trim the dashes after cutting to 63: the cut can leave one at the end.
  const cleaned = hostname.split('.')[0]!.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return deviceNameProblem(cleaned) === null ? cleaned : null;
}

function hasControlCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20 || s.charCodeAt(i) === 0x7f) return true;
  return false;
}

/** Why a label key is invalid, or null when it is valid. */
export function labelKeyProblem(key: string): string | null {
  if (LABEL_KEY.test(key) && key.length <= LIMITS.maxLabelKeyLength) return null;
  return `label key '${key}' is invalid: use lowercase letters, digits, '_', '.', '/', '-'`;
}

/** Parses `k=v` labels, reporting every bad one at once. */
export function parseLabels(items: readonly string[]): { labels: Record<string, string>; problems: string[] } {
  const labels: Record<string, string> = {};
  const problems: string[] = [];
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    const keyProblem = eq < 0 ? null : labelKeyProblem(key);
    if (eq < 0) problems.push(`label '${item}' has no '=': write key=value`);
    else if (keyProblem) problems.push(keyProblem);
    else if (value.length > LIMITS.maxLabelValueLength || hasControlCharacters(value)) problems.push(`label '${key}' has a value that is too long or has control characters`);
    else labels[key] = value;
  }
  if (Object.keys(labels).length > LIMITS.maxLabels) problems.push(`too many labels: at most ${LIMITS.maxLabels}`);
  return { labels, problems };
}
