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

/**
 * Lowercases A-Z only. String.prototype.toLowerCase folds more: KELVIN SIGN (U+212A) to 'k',
 * so '\u212Aiosk' would reach the device 'kiosk'. Names are ASCII; anything else must stay
 * as it is and fail to match.
 */
export function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/** The first character of `text` outside printable ASCII, as `U+XXXX`, or null when there is none. */
export function firstNonAscii(text: string): string | null {
  const m = /[^\x20-\x7e]/u.exec(text);
  return m === null ? null : `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The device name an operator meant by `host` (ASCII-lowercased, without the .ferry suffix). */
export function deviceNameFromHost(host: string): string {
  const h = asciiLowerCase(host);
  return h.endsWith(DEVICE_HOST_SUFFIX) ? h.slice(0, -DEVICE_HOST_SUFFIX.length) : h;
}

/** Why a device name is invalid, or null when it is valid. */
export function deviceNameProblem(name: string): string | null {
  if (DNS_LABEL.test(name)) return null;
  const foreign = firstNonAscii(name);
  if (foreign !== null) {
    return `device name '${name}' has a character that is not ASCII (${foreign}), which may look like a letter but is not one: use 1-63 of a-z, 0-9 and '-'`;
  }
  if (asciiLowerCase(name) !== name && DNS_LABEL.test(asciiLowerCase(name))) {
    return `device name '${name}' has upper-case letters; OpenSSH lowercases host names, so use '${asciiLowerCase(name)}'`;
  }
  return `device name '${name}' is not a DNS label: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'`;
}

/** Why an operator user name is invalid, or null when it is valid. */
export function userNameProblem(name: string): string | null {
  if (name.startsWith('ferry-')) return `user name '${name}' is reserved: names starting with 'ferry-' belong to agents`;
  if (USER_NAME.test(name)) return null;
  const foreign = firstNonAscii(name);
  if (foreign !== null) return `user name '${name}' has a character that is not ASCII (${foreign}): use up to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or '_'`;
  return `user name '${name}' is invalid: use up to 32 of a-z, 0-9, '_', '.', '-', starting with a letter or '_'`;
}

/** A device name derived from a host name, or null when nothing usable is left. */
export function deviceNameFromHostname(hostname: string): string | null {
  // Trim the dashes after cutting to 63: the cut can leave one at the end.
  const cleaned = asciiLowerCase(hostname.split('.')[0]!).replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return deviceNameProblem(cleaned) === null ? cleaned : null;
}

/**
 * Characters a label value may not hold: C0 and C1 controls and DEL (they move the cursor or
 * end lines in a terminal), the line and paragraph separators, and the bidirectional
 * controls (LRM, RLM, ALM, the embeddings, overrides and isolates), which make a value
 * display as something other than what it is.
 */
const FORBIDDEN_IN_VALUE: readonly (readonly [number, number])[] = [
  [0x00, 0x1f], [0x7f, 0x9f], [0x061c, 0x061c], [0x200e, 0x200f], [0x2028, 0x2029], [0x202a, 0x202e], [0x2066, 0x2069],
];

/** The first character of a label value it may not hold, as `U+XXXX`, or null. */
function forbiddenInValue(value: string): string | null {
  for (const c of value) {
    const cp = c.codePointAt(0)!;
    if (FORBIDDEN_IN_VALUE.some(([lo, hi]) => cp >= lo && cp <= hi)) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return null;
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
    else if (value.length > LIMITS.maxLabelValueLength) problems.push(`label '${key}' has a value longer than ${LIMITS.maxLabelValueLength} characters`);
    else if (forbiddenInValue(value) !== null) problems.push(`label '${key}' has a control character in its value (${forbiddenInValue(value)}): labels are shown in terminals, where these hide or reorder text`);
    else labels[key] = value;
  }
  if (Object.keys(labels).length > LIMITS.maxLabels) problems.push(`too many labels: at most ${LIMITS.maxLabels}`);
  return { labels, problems };
}
