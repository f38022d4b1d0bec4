/**
 * The argv front end over the operations: `ssh -p PORT op@relay COMMAND` and the local
 * `ferry COMMAND --data-dir DIR` both come here. Words become a typed input, the operation
 * runs as the principal, and its result becomes text or `--json`. No rule lives here.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isFerryError } from '../common/errors.ts';
import { parseDuration } from '../common/duration.ts';
import { LIMITS } from '../protocol/limits.ts';
import { labelKeyProblem, parseLabels } from '../protocol/names.ts';
import {
  addRole, addUser, addUserKey, approveDevice, authorize, createLoginLink, createToken, createTokenProblems, editRole, exportAudit, labelDevice, labelDeviceProblems, listDevices, listRoles, listTokens,
  listUsers, listRecordings, getRecording, perform, readAudit, readAuditProblems, removeDevice, removeRole, removeUser, removeUserKey, revokeDevice, revokeToken, setUserRoles, sshConfig,
  verifyAudit, whoami, type AuditView, type OperationContext, type RoleInput,
} from './operations/index.ts';
import type { Principal } from './principal.ts';
import { relaySsh } from './relay-address.ts';

/** Who runs a command, and what the command may touch. */
export interface CommandContext extends OperationContext {
  principal: Principal;
}

/**
 * What a command prints and its exit status (0 done, 1 refused or failed, 2 bad usage).
 * `more` is output that follows `stdout` and may be larger than memory (`audit export`):
 * made as it is read, for the front end to write with back-pressure.
 */
export interface CommandResult { code: number; stdout: string; stderr: string; more?: Iterable<string> }

/** The help text, naming the command line `user` pastes to reach the relay at `publicAddress`. */
export function helpText(publicAddress: string, user: string): string {
  return `ferry relay commands (${relaySsh(publicAddress, user)} COMMAND, or ferry COMMAND --data-dir DIR on the relay host):
  whoami                                   who the relay thinks you are, and your roles
  login [--json]                           a one-time URL that signs a browser in to the web console as you (works once, within 2 minutes);
                                           on the relay host: ferry login USER --data-dir DIR
  devices [--label k=v]... [--online|--offline] [--json]
                                           devices you may reach (all with device.list): status, online, last seen, labels
  token create [--ttl 1h] [--name NAME] [--label k=v]... [--uses N] [--approve] [--json]
                                           an enrollment token (stdout) for 'ferry agent --token'; what it allows (stderr)
  token ls [--all] [--json]                tokens that can still enrol (--all: expired, used-up, revoked too); never the secret
  token rm ID [--json]                     revoke a token: enrolling with it is refused from now on
  device approve|revoke|rm NAME [--json]   let a pending device in, shut one out, forget one
  device label NAME k=v|k-... [--json]     set (k=v) or remove (k-) a device's labels
  user add NAME --key 'ssh-ed25519 …' [--key …] [--role R[,R]] [--json]   (default role: operator)
  user role NAME R[,R] [--json]            replace a user's roles
  user key add NAME 'ssh-ed25519 …' [--json]
  user key rm NAME FINGERPRINT [--json]    rotate keys without removing the user
  user rm NAME [--json]
  users [--json]                           users, their roles and key fingerprints
  role add NAME --devices SEL|none [--devices SEL]... --logins L[,L]|none [--forward T[,T]|none] [--actions A[,A]|none] [--json]
  role edit NAME [the same flags: those given replace]  [--json]
  role rm NAME [--json]
  role ls [--json]                         roles, what they allow, and who has them
  audit [--since 1h] [--until DATE] [--device NAME] [--user NAME] [--action A|GROUP.*] [--limit N] [--json]
  audit verify [--json]                    check the hash chain; names the first bad row
  audit export [--since 1h]                every row as JSON lines, for a SIEM
  recordings [--device NAME] [--user NAME] [--json]
                                           console session recordings, newest first: who, device, login, start, length, size, sha256
  recording cat ID                         the recording as asciicast v2 (.cast), for asciinema play or a player
  ssh-config [--known-hosts] [--user NAME] [--json]
                                           ssh_config for reaching devices as NAME.ferry, or known_hosts lines
  help                                     this text
Every command takes --json. What else you may run is what your roles' actions grant ('whoami', 'role ls').`;
}

/** The help text with placeholders, for `ferry help commands` where no relay is known. */
export const USAGE = helpText('', 'USER');

/** The user name to put in a hint: the caller's, or a placeholder for the local CLI (no relay user). */
function hintUser(ctx: CommandContext): string { return ctx.principal.kind === 'local' ? 'USER' : ctx.principal.user; }

class UsageError extends Error {}

const ok = (stdout: string, stderr = ''): CommandResult => ({ code: 0, stdout, stderr });
const json = (value: unknown): CommandResult => ok(JSON.stringify(value, null, 2) + '\n');

type Values = Record<string, string | boolean | string[] | undefined>;

/** Parses flags; `positionals` is the exact count of other words, or the least with `atLeast`. */
function parse(args: string[], options: ParseArgsConfig['options'], positionals: number, atLeast = false): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (atLeast ? parsed.positionals.length < positionals : parsed.positionals.length !== positionals) {
    throw new UsageError(positionals === 0 ? `unexpected argument '${parsed.positionals[0]}'` : `expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  }
  return { values: parsed.values as Values, positionals: parsed.positionals };
}

/** A plain decimal whole number, or NaN (Number() would take 0x10 and 1e3). */
function wholeNumber(text: string): number { return /^\d{1,9}$/.test(text) ? Number(text) : NaN; }

/** Comma-separated items of a repeatable flag: `--logins pi,root --logins admin`. */
function items(v: string | boolean | string[] | undefined): string[] | undefined {
  if (v === undefined || typeof v === 'boolean') return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/** A time: a duration before now (1h) or a date (2026-01-31T12:00Z). */
function timeArg(ctx: CommandContext, flag: string, text: string | undefined, problems: string[]): number | undefined {
  if (text === undefined) return undefined;
  const d = parseDuration(text);
  if (d !== null) return ctx.now - d;
  const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isNaN(t)) return t;
  problems.push(`--${flag} '${text}' is neither a duration (1h) nor a date (2026-01-31T12:00Z)`);
  return undefined;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';
}

function usageIf(problems: string[]): void {
  if (problems.length) throw new UsageError(problems.join('\n'));
}

function devices(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { label: { type: 'string', multiple: true }, online: { type: 'boolean' }, offline: { type: 'boolean' } }, 0);
  const problems: string[] = [];
  if (values.online && values.offline) problems.push('--online and --offline exclude each other: give one');
  const labelArgs = (values.label as string[] | undefined) ?? [];
  const { labels, problems: labelProblems } = parseLabels(labelArgs);
  problems.push(...labelProblems);
  usageIf(problems);
  const online = values.online ? true : values.offline ? false : undefined;
  const { devices: list, visible } = perform(ctx, ctx.principal, listDevices, { labels, online });
  if (values.json) return json(list);
  if (visible === 0) return ok('', "no devices yet: 'token create' makes an enrollment token\n");
  if (list.length === 0) {
    const filters = [...(values.online ? ['--online'] : []), ...(values.offline ? ['--offline'] : []), ...labelArgs.map((l) => `--label ${l}`)];
    return ok('', `no device matches ${filters.join(' ')}\n`);
  }
  const rows = [['NAME', 'STATUS', 'ONLINE', 'LAST SEEN', 'SINCE', 'ADDRESS', 'AGENT', 'LAST DISCONNECT', 'CLONED?', 'LABELS']];
  for (const d of list) {
    rows.push([
      d.name, d.status, d.online ? 'online' : 'offline', d.online ? 'now' : (d.lastSeen ?? 'never'),
      d.connectedSince ?? '-', d.remoteAddress ?? '-', d.agentVersion ?? '-', d.lastDisconnectReason ?? '-',
      d.cloned === null ? '?' : d.cloned ? `yes: ${d.cloneAddresses.join(',')}` : '-',
      labelText(d.labels),
    ]);
  }
  return ok(table(rows));
}

function tokenCreate(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {
    ttl: { type: 'string' }, name: { type: 'string' }, label: { type: 'string', multiple: true },
    uses: { type: 'string' }, approve: { type: 'boolean' },
  }, 0);
  const problems: string[] = [];
  let ttlMs: number | undefined;
  if (values.ttl !== undefined) {
    const d = parseDuration(values.ttl as string);
    if (d === null || d <= 0) problems.push(`--ttl '${values.ttl}' is not a duration like 15m, 1h or 7d`);
    else ttlMs = d;
  }
  let uses = values.uses === undefined ? undefined : wholeNumber(values.uses as string);
  if (uses !== undefined && Number.isNaN(uses)) {
    problems.push(`--uses '${values.uses}' must be a whole number from 1 to ${LIMITS.tokenMaxUses}`);
    uses = undefined;
  }
  const { labels, problems: labelProblems } = parseLabels((values.label as string[] | undefined) ?? []);
  const input = { ttlMs, uses, name: (values.name as string | undefined) ?? null, labels, approve: values.approve === true };
  // Every problem at once: what the words alone tell, then what the operation would refuse.
  // Permission first, so that someone who may not make tokens learns nothing of device names.
  authorize(ctx, ctx.principal, createToken, input);
  const opProblems = createTokenProblems(ctx, input);
  usageIf([...problems, ...opProblems, ...labelProblems]);
  const t = perform(ctx, ctx.principal, createToken, input);
  if (values.json) return json(t);
  const what = `${t.name ? `device '${t.name}'` : 'any device name (the agent gives --name)'}, ${t.uses} use${t.uses === 1 ? '' : 's'}, expires ${t.expiresAt}, ${t.approve ? 'approved on enrollment' : "waits for 'device approve'"}`;
  return ok(t.token + '\n', `token ${t.id} for ${what}\non the device, as root: FERRY_TOKEN=TOKEN ferry agent --state-dir /var/lib/ferry-agent\n`);
}

function tokenLs(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { all: { type: 'boolean' } }, 0);
  const list = perform(ctx, ctx.principal, listTokens, { all: values.all === true });
  if (values.json) return json(list);
  if (list.length === 0) return ok('', values.all ? "no tokens yet: 'token create' makes one\n" : "no usable tokens ('token ls --all' shows expired, used-up and revoked ones)\n");
  return ok(table([
    ['ID', 'NAME', 'LABELS', 'USES LEFT', 'EXPIRES', 'CREATED BY', 'APPROVE', 'STATE'],
    ...list.map((t) => [t.id, t.name ?? '-', labelText(t.labels), String(t.usesLeft), t.expiresAt, t.createdBy, t.approve ? 'yes' : 'no', t.state]),
  ]));
}

function tokenRm(ctx: CommandContext, args: string[]): CommandResult {
  const { values, positionals } = parse(args, {}, 1);
  const r = perform(ctx, ctx.principal, revokeToken, { id: positionals[0]! });
  return values.json ? json(r) : ok(`token ${r.id} revoked: it enrols no more devices\n`);
}

function deviceLabel(ctx: CommandContext, args: string[]): CommandResult {
  const { values, positionals } = parse(args, {}, 1, true);
  const [name, ...words] = positionals as [string, ...string[]];
  const problems: string[] = [];
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const item of words) {
    if (!item.includes('=') && item.endsWith('-')) {
      const key = item.slice(0, -1);
      const p = labelKeyProblem(key);
      if (p) problems.push(p); else remove.push(key);
    } else {
      // The same rules as token create's --label, one item at a time so that each problem is told.
      const parsed = parseLabels([item]);
      problems.push(...parsed.problems);
      Object.assign(set, parsed.labels);
    }
  }
  usageIf([...problems, ...labelDeviceProblems({ name, set, remove }).filter((p) => !problems.includes(p))]);
  const r = perform(ctx, ctx.principal, labelDevice, { name, set, remove });
  return values.json ? json(r) : ok(`device '${name}' labels: ${labelText(r.labels)}\n`);
}

function deviceCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb === 'label') return deviceLabel(ctx, args);
  const op = verb === 'approve' ? approveDevice : verb === 'revoke' ? revokeDevice : verb === 'rm' ? removeDevice : null;
  if (op === null) throw new UsageError(`unknown device command '${verb ?? ''}': use approve, revoke, rm or label`);
  const { values, positionals } = parse(args, {}, 1);
  const r = perform(ctx, ctx.principal, op, { name: positionals[0]! });
  return values.json ? json(r) : ok(`device '${r.name}' ${r.result}\n`);
}

function userCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb === 'add') {
    const { values, positionals } = parse(args, { key: { type: 'string', multiple: true }, role: { type: 'string', multiple: true } }, 1);
    const r = perform(ctx, ctx.principal, addUser, { name: positionals[0]!, keys: (values.key as string[] | undefined) ?? [], roles: items(values.role) });
    return values.json ? json(r) : ok(`user '${r.name}' added with role${r.roles.length === 1 ? '' : 's'} ${r.roles.join(', ')}\n`);
  }
  if (verb === 'rm') {
    const { values, positionals } = parse(args, {}, 1);
    const r = perform(ctx, ctx.principal, removeUser, { name: positionals[0]! });
    return values.json ? json(r) : ok(`user '${r.name}' removed\n`);
  }
  if (verb === 'role') {
    const { values, positionals } = parse(args, {}, 2);
    const r = perform(ctx, ctx.principal, setUserRoles, { name: positionals[0]!, roles: items(positionals[1]) ?? [] });
    return values.json ? json(r) : ok(`user '${r.name}' now has role${r.roles.length === 1 ? '' : 's'} ${r.roles.join(', ')}\n`);
  }
  if (verb === 'key') {
    const [sub, ...rest] = args;
    if (sub === 'add') {
      const { values, positionals } = parse(rest, {}, 2);
      const r = perform(ctx, ctx.principal, addUserKey, { name: positionals[0]!, key: positionals[1]! });
      return values.json ? json(r) : ok(`user '${r.name}': key ${r.key} added\n`);
    }
    if (sub === 'rm') {
      const { values, positionals } = parse(rest, {}, 2);
      const r = perform(ctx, ctx.principal, removeUserKey, { name: positionals[0]!, fingerprint: positionals[1]! });
      return values.json ? json(r) : ok(`user '${r.name}': key ${r.key} removed\n`);
    }
    throw new UsageError(`unknown user key command '${sub ?? ''}': use add or rm`);
  }
  throw new UsageError(`unknown user command '${verb ?? ''}': use add, rm, role or key`);
}

function users(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {}, 0);
  const list = perform(ctx, ctx.principal, listUsers, {});
  if (values.json) return json(list);
  return ok(table([['NAME', 'ROLES', 'KEYS'], ...list.map((u) => [u.name, u.roles.join(',') || '-', u.keys.join(' ')])]));
}

const ROLE_FLAGS = {
  devices: { type: 'string', multiple: true }, logins: { type: 'string', multiple: true },
  forward: { type: 'string', multiple: true }, actions: { type: 'string', multiple: true },
} as const;

/** A role from flags: selectors are whole (they hold commas), the other lists comma-separated; `none` alone is the empty list. */
function roleInput(name: string, values: Values): RoleInput {
  const noneIsEmpty = (list: string[] | undefined) => (list?.length === 1 && list[0] === 'none' ? [] : list);
  return {
    name,
    devices: noneIsEmpty(values.devices === undefined ? undefined : (values.devices as string[]).map((d) => d.trim())),
    logins: noneIsEmpty(items(values.logins)),
    forwards: noneIsEmpty(items(values.forward)),
    actions: noneIsEmpty(items(values.actions)),
  };
}

function roleText(r: { name: string; devices: string[]; logins: string[]; forwards: string[]; actions: string[] }): string {
  return `role '${r.name}': devices ${r.devices.join(' or ') || 'none'}; logins ${r.logins.join(',') || 'none'}; forward ${r.forwards.join(',') || 'none'}; actions ${r.actions.join(',') || 'none'}\n`;
}

function roleCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb === 'add' || verb === 'edit') {
    const { values, positionals } = parse(args, ROLE_FLAGS, 1);
    const r = perform(ctx, ctx.principal, verb === 'add' ? addRole : editRole, roleInput(positionals[0]!, values));
    return values.json ? json(r) : ok(roleText(r));
  }
  if (verb === 'rm') {
    const { values, positionals } = parse(args, {}, 1);
    const r = perform(ctx, ctx.principal, removeRole, { name: positionals[0]! });
    return values.json ? json(r) : ok(`role '${r.name}' removed${r.users.length ? ` (it was bound to ${r.users.join(', ')})` : ''}\n`);
  }
  if (verb === 'ls') {
    const { values } = parse(args, {}, 0);
    const list = perform(ctx, ctx.principal, listRoles, {});
    if (values.json) return json(list);
    return ok(table([
      ['NAME', 'DEVICES', 'LOGINS', 'FORWARD', 'ACTIONS', 'USERS'],
      ...list.map((r) => [r.name, r.devices.join(' or ') || 'none', r.logins.join(',') || 'none', r.forwards.join(',') || 'none', r.actions.join(',') || 'none', r.users.join(',') || '-']),
    ]));
  }
  throw new UsageError(`unknown role command '${verb ?? ''}': use add, edit, rm or ls`);
}

function auditLine(a: AuditView): string {
  const source = a.source === 'device' ? ' (device)' : '';
  return `${a.at}  ${a.actor}  ${a.action}${a.target ? ' ' + a.target : ''}${source}${Object.keys(a.detail).length ? ' ' + JSON.stringify(a.detail) : ''}`;
}

function audit(ctx: CommandContext, args: string[]): CommandResult {
  if (args[0] === 'verify') {
    const { values } = parse(args.slice(1), {}, 0);
    const r = perform(ctx, ctx.principal, verifyAudit, {});
    if (values.json) return { ...json(r), code: r.ok ? 0 : 1 };
    return r.ok
      ? ok(`audit log intact: ${r.rows} row${r.rows === 1 ? '' : 's'}${r.head ? `, head ${r.head}` : ''}\n`)
      : { code: 1, stdout: '', stderr: `ferry: audit log broken: ${r.problem}\n` };
  }
  if (args[0] === 'export') {
    const { values } = parse(args.slice(1), { since: { type: 'string' } }, 0);
    const problems: string[] = [];
    const since = timeArg(ctx, 'since', values.since as string | undefined, problems);
    usageIf(problems);
    const rows = perform(ctx, ctx.principal, exportAudit, { since });
    return { ...ok(''), more: (function* lines() { for (const row of rows) yield JSON.stringify(row) + '\n'; })() };
  }
  const { values } = parse(args, {
    since: { type: 'string' }, until: { type: 'string' }, device: { type: 'string' }, user: { type: 'string' }, action: { type: 'string' }, limit: { type: 'string' },
  }, 0);
  const problems: string[] = [];
  const since = timeArg(ctx, 'since', values.since as string | undefined, problems);
  const until = timeArg(ctx, 'until', values.until as string | undefined, problems);
  const limit = values.limit === undefined ? undefined : wholeNumber(values.limit as string);
  const input = { since, until, limit, device: values.device as string | undefined, user: values.user as string | undefined, action: values.action as string | undefined };
  // Every problem at once: what the words alone tell, then what the operation would refuse.
  usageIf([...problems, ...readAuditProblems(input)]);
  const list = perform(ctx, ctx.principal, readAudit, input);
  if (values.json) return json(list);
  return ok(list.map(auditLine).join('\n') + (list.length ? '\n' : ''));
}

function recordings(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { device: { type: 'string' }, user: { type: 'string' } }, 0);
  const list = perform(ctx, ctx.principal, listRecordings, { device: values.device as string | undefined, user: values.user as string | undefined });
  if (values.json) return json(list);
  if (list.length === 0) return ok('', values.device !== undefined || values.user !== undefined ? 'no recording matches\n' : 'no recordings yet: console terminal sessions are recorded\n');
  return ok(table([
    ['ID', 'STARTED', 'LENGTH', 'USER', 'DEVICE', 'LOGIN', 'BYTES', 'SHA256'],
    ...list.map((r) => [
      r.id, r.startedAt, r.durationMs === null ? 'unfinished' : `${(r.durationMs / 1000).toFixed(1)}s`, r.user, r.device, r.login,
      r.bytes === null ? '-' : String(r.bytes), r.sha256 ?? '-',
    ]),
  ]));
}

function recordingCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb !== 'cat') throw new UsageError(`unknown recording command '${verb ?? ''}': use cat`);
  const { positionals } = parse(args, {}, 1);
  const { cast } = perform(ctx, ctx.principal, getRecording, { id: positionals[0]! });
  return { ...ok(''), more: cast };
}

function sshConfigCommand(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { 'known-hosts': { type: 'boolean' }, user: { type: 'string' } }, 0);
  // Run locally on the relay host, the principal is no relay user: the config needs a real one.
  if (ctx.principal.kind === 'local' && values.user === undefined && !values['known-hosts']) throw new UsageError('give --user NAME: the relay user the config should log in as');
  const r = perform(ctx, ctx.principal, sshConfig, { user: values.user as string | undefined });
  if (values.json) return json(r);
  return ok(values['known-hosts'] ? r.knownHosts.join('\n') + '\n' : r.config!);
}

function loginCommand(ctx: CommandContext, args: string[]): CommandResult {
  // The local CLI has no relay user of its own: it names the one to sign in (`ferry login alice`).
  const { values, positionals } = parse(args, {}, ctx.principal.kind === 'local' ? 1 : 0);
  const r = perform(ctx, ctx.principal, createLoginLink, { user: positionals[0] });
  if (values.json) return json(r);
  const minutes = r.ttlSeconds / 60;
  return ok(r.url + '\n', `open it in a browser to sign in to the console as '${r.user}': it works once, within ${minutes} minute${minutes === 1 ? '' : 's'} (until ${r.expiresAt})\n`);
}

function whoamiCommand(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {}, 0);
  const r = perform(ctx, ctx.principal, whoami, {});
  return values.json ? json(r) : ok(`${r.name} (${r.roles.join(', ') || 'no roles'})${r.keyFingerprint ? ` key ${r.keyFingerprint}` : ''}\n`);
}

/**
 * Runs one operator command. Every expected failure becomes a message and an exit code;
 * only the unexpected (a bug, a failing disk) is thrown, for the caller to log and report.
 */
export function runCommand(ctx: CommandContext, words: readonly string[]): CommandResult {
  const [command, ...rest] = words;
  const usage = (message: string): CommandResult => ({
    code: 2, stdout: '',
    stderr: `ferry: ${message}\n${command === undefined || /^unknown/.test(message) ? `\n${helpText(ctx.relay.publicAddress, hintUser(ctx))}\n` : "run 'help' for every command and its flags\n"}`,
  });
  try {
    // `devices --help` is asking, not a bad flag: every command's flags are in the one help text.
    if (command === undefined || command === 'help' || words.includes('--help') || words.includes('-h')) return ok(helpText(ctx.relay.publicAddress, hintUser(ctx)) + '\n');
    switch (command) {
      case 'whoami': return whoamiCommand(ctx, rest);
      case 'login': return loginCommand(ctx, rest);
      case 'ssh-config': return sshConfigCommand(ctx, rest);
      case 'devices': return devices(ctx, rest);
      case 'users': return users(ctx, rest);
      case 'audit': return audit(ctx, rest);
      case 'recordings': return recordings(ctx, rest);
      case 'recording': return recordingCommand(ctx, rest[0], rest.slice(1));
      case 'token':
        if (rest[0] === 'create') return tokenCreate(ctx, rest.slice(1));
        if (rest[0] === 'ls') return tokenLs(ctx, rest.slice(1));
        if (rest[0] === 'rm') return tokenRm(ctx, rest.slice(1));
        throw new UsageError(`unknown token command '${rest[0] ?? ''}': use create, ls or rm`);
      case 'device': return deviceCommand(ctx, rest[0], rest.slice(1));
      case 'user': return userCommand(ctx, rest[0], rest.slice(1));
      case 'role': return roleCommand(ctx, rest[0], rest.slice(1));
      default: throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    if (isFerryError(err, 'FERRY_USAGE')) return usage(err.message);
    if (isFerryError(err)) return { code: 1, stdout: '', stderr: `ferry: ${err.message}\n` };
    throw err;
  }
}
