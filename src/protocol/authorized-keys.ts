/**
 * Who may log in to a device's built-in SSH server: the relay pushes the list over the live
 * link, as JSON lines on an exec channel the agent keeps open. Pure; runs anywhere.
 */

/** The exec command an agent sends to receive the list, now and after every change. */
export const AUTHORIZED_KEYS_COMMAND = 'authorized-keys --watch';

/** Longest line the agent accepts (a list of many operators' keys). */
export const MAX_AUTHORIZED_KEYS_LINE = 4 * 1024 * 1024;

/**
 * One operator key a device should accept, whose it is, and what it may do there: the login
 * names it may use and the forward targets (access-rules.ts syntax) it may reach, the union
 * of the roles (named in `roles`, for messages) that cover this device.
 */
export interface AuthorizedKey { user: string; line: string; logins: string[]; forwards: string[]; roles: string[] }

/** Longest list of logins, forward targets or roles on one key. */
const MAX_ITEMS = 256;

/** One message: the whole current list (not a change), so a lost message cannot leave a stale key. */
export interface AuthorizedKeysMessage { keys: AuthorizedKey[] }

/** Encodes one message as a line. */
export function encodeAuthorizedKeys(msg: AuthorizedKeysMessage): string {
  return JSON.stringify(msg) + '\n';
}

/** An Ed25519 key line: the base64 of the type string and exactly 32 key bytes (the agent checks the point itself). */
const ED25519_LINE = /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/;

function strings(v: unknown): string[] | null {
  return Array.isArray(v) && v.length <= MAX_ITEMS && v.every((x) => typeof x === 'string' && x.length <= 256) ? v as string[] : null;
}

/** Parses one line, or returns null when it is not a valid message. */
export function parseAuthorizedKeys(line: string): AuthorizedKeysMessage | null {
  try {
    const o = JSON.parse(line) as { keys?: unknown };
    if (!Array.isArray(o.keys)) return null;
    const keys: AuthorizedKey[] = [];
    for (const k of o.keys as Record<string, unknown>[]) {
      if (typeof k?.user !== 'string' || typeof k.line !== 'string' || !ED25519_LINE.test(k.line)) return null;
      // A relay before roles sent neither list: it let every key log in as anyone, which the device keeps.
      const logins = k.logins === undefined ? ['*'] : strings(k.logins);
      const forwards = k.forwards === undefined ? ['*'] : strings(k.forwards);
      const roles = k.roles === undefined ? [] : strings(k.roles);
      if (!logins || !forwards || !roles) return null;
      keys.push({ user: k.user, line: k.line, logins, forwards, roles });
    }
    return { keys };
  } catch {
    return null;
  }
}
