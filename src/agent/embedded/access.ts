/**
 * What a pushed operator key may do on this device's built-in server: which login names it
 * may use and where its forwards may go. Pure. The device decides with the relay's list
 * alone (and its own --allow-forward rules), so a relay bug by itself grants nothing.
 */
import { forwardAllowed, loginAllowed, parseForwardTarget, type ForwardTarget } from '../../protocol/access-rules.ts';
import type { AuthorizedKey } from '../../protocol/authorized-keys.ts';
import { mayForward, type ForwardRule } from './forward-policy.ts';

/** The roles a key's rights come from, for messages: "roles ops, viewer" or "the relay's list". */
function fromRoles(key: AuthorizedKey): string {
  return key.roles.length ? `${key.roles.length === 1 ? 'role' : 'roles'} ${key.roles.join(', ')}` : "the relay's list for this key";
}

/** Why `key` may not log in as `login`, or null when it may. */
export function loginRefusal(key: AuthorizedKey, login: string): string | null {
  if (loginAllowed(key.logins, login)) return null;
  const allowed = key.logins.length ? `only as ${key.logins.join(', ')}` : 'as nobody';
  return `ferry: operator '${key.user}' may not log in as '${login}' on this device: ${fromRoles(key)} allow${key.roles.length > 1 ? '' : 's'} logins ${allowed}`;
}

/**
 * May the relay open a console session here for `operator` as `login`? Only when the
 * relay's list gives `operator` a key whose logins allow `login`: the console gets the same
 * grant as the operator's own key, no more. `refusal` says why not.
 */
export function consoleLogin(keys: readonly AuthorizedKey[], operator: string, login: string): { refusal: string | null } {
  const own = keys.filter((k) => k.user === operator);
  if (own.length === 0) return { refusal: `ferry: operator '${operator}' has no key in this device's list from the relay, so the relay may open no console session for them` };
  if (own.some((k) => loginRefusal(k, login) === null)) return { refusal: null };
  return { refusal: loginRefusal(own[0]!, login) };
}

/**
 * The key's forward targets, parsed. A target the device cannot parse is dropped (it allows
 * nothing), never read as `*`.
 */
export function forwardTargetsOf(key: AuthorizedKey): ForwardTarget[] {
  return key.forwards.map(parseForwardTarget).filter((t): t is ForwardTarget => !('problem' in t));
}

/**
 * Why a forward to host:port is refused, or null when both the key's targets and the
 * device's own rules allow it. `*` in the key's list leaves it to the device's rules.
 */
export function forwardRefusal(key: AuthorizedKey, deviceRules: readonly ForwardRule[], host: string, port: number): string | null {
  const dest = `${host}:${port}`;
  if (!forwardAllowed(forwardTargetsOf(key), host, port)) {
    const allowed = key.forwards.length ? key.forwards.join(', ') : 'none';
    return `${dest} is not a forward target of operator '${key.user}' on this device (${fromRoles(key)}: ${allowed})`;
  }
  if (!mayForward(deviceRules, host, port)) return `${dest} is not in this device's forwarding allowlist (ferry agent --allow-forward)`;
  return null;
}
