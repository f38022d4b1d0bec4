/**
 * Operator commands: the same code serves `ssh -p PORT op@relay COMMAND` and the local
 * `ferry COMMAND --data-dir DIR`. Takes words and a store, returns text and an exit code.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FerryError, isFerryError } from '../common/errors.ts';
import { parseDuration } from '../common/duration.ts';
import { parsePublicKey, type PublicKey } from '../common/ssh-keys.ts';
import { LIMITS } from '../protocol/limits.ts';
import { DEVICE_HOST_SUFFIX, deviceNameProblem, labelKeyProblem, parseLabels, userNameProblem } from '../protocol/names.ts';
import { encodeToken } from '../protocol/token.ts';
import type { CloneEpisode } from './clone-detector.ts';
import { mayRunCommand, type Role } from './policy.ts';
import { relayHostPort, relaySsh } from './relay-address.ts';
import type { DeviceRecord, Store, StoredToken } from './store.ts';

/** The roles `user add --role` takes until the operations layer takes any stored role. */
const ROLES: readonly Role[] = ['admin', 'operator'];

/** Who runs a command, and what the command may touch. */
export interface CommandContext {
  store: Store;
  actor: { name: string; role: Role; keyFingerprint: string | null };
  now: number;
  relay: { publicAddress: string; fingerprint: string; hostKeyLine?: string };
  /**
   * Called after a change that live connections must follow: with a device's name when that
   * device was approved, revoked or removed, without one when users changed.
   */
  onChange?: (device?: string) => void;
  /**
   * The running relay's clone episodes (kept in its memory only): given over SSH, absent
   * for the local command, which then cannot tell.
   */
  cloneOf?: (device: string) => CloneEpisode | null;
}

/** What a command prints and its exit status (0 done, 1 refused or failed, 2 bad usage). */
export interface CommandResult { code: number; stdout: string; stderr: string }

/** The help text, naming the command line `user` pastes to reach the relay at `publicAddress`. */
export function helpText(publicAddress: string, user: string): string {
  return `ferry relay commands (${relaySsh(publicAddress, user)} COMMAND, or ferry COMMAND --data-dir DIR on the relay host):
  whoami                                   who the relay thinks you are
  devices [--label k=v]... [--online|--offline] [--json]
                                           devices (all labels given must match): status, online, last seen, labels
  token create [--ttl 1h] [--name NAME] [--label k=v]... [--uses N] [--approve] [--json]
                                           an enrollment token (stdout) for 'ferry agent --token'; what it allows (stderr)
  token ls [--all] [--json]                tokens that can still enrol (--all: expired, used-up, revoked too); never the secret
  token rm ID [--json]                     revoke a token: enrolling with it is refused from now on
  device approve|revoke|rm NAME [--json]   let a pending device in, shut one out, forget one
  device label NAME k=v|k-... [--json]     set (k=v) or remove (k-) a device's labels
  user add NAME --key 'ssh-ed25519 …' [--key …] [--role admin|operator] [--json]
  user rm NAME [--json]
  users [--json]
  audit [--since 1h] [--device NAME] [--limit N] [--json]
  ssh-config [--known-hosts] [--user NAME] [--json]
                                           ssh_config for reaching devices as NAME.ferry, or known_hosts lines
  help                                     this text
Every command takes --json. token, device, user, users and audit are for admins.`;
}

/** The help text with placeholders, for `ferry help commands` where no relay is known. */
export const USAGE = helpText('', 'USER');

/** The user name to put in a hint: the caller's, or a placeholder for a local admin (no relay user). */
function hintUser(ctx: CommandContext): string { return ctx.actor.keyFingerprint === null ? 'USER' : ctx.actor.name; }

class UsageError extends Error {}

const ok = (stdout: string, stderr = ''): CommandResult => ({ code: 0, stdout, stderr });
const json = (value: unknown): CommandResult => ok(JSON.stringify(value, null, 2) + '\n');

/** Parses flags; `positionals` is the exact count of other words, or the least with `atLeast`. */
function parse(args: string[], options: ParseArgsConfig['options'], positionals: number, atLeast = false) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' }, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (atLeast ? parsed.positionals.length < positionals : parsed.positionals.length !== positionals) {
    throw new UsageError(positionals === 0 ? `unexpected argument '${parsed.positionals[0]}'` : `expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  }
  return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
}

/** A plain decimal whole number, or NaN (Number() would take 0x10 and 1e3). */
function wholeNumber(text: string): number { return /^\d{1,9}$/.test(text) ? Number(text) : NaN; }

function iso(ms: number | null): string | null { return ms === null ? null : new Date(ms).toISOString(); }

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function deviceJson(d: DeviceRecord, now: number, clone: CloneEpisode | null | undefined) {
  return {
    name: d.name,
    status: d.status,
    online: d.onlineSince !== null,
    connectedSince: iso(d.onlineSince),
    lastSeen: d.onlineSince !== null ? iso(now) : iso(d.lastSeen),
    remoteAddress: d.remoteAddress,
    agentVersion: d.agentVersion,
    lastDisconnectReason: d.lastDisconnectReason,
    labels: d.labels,
    keyFingerprint: d.keyFingerprint,
    // null: not known here (the local command has no view of the relay's memory).
    cloned: clone === undefined ? null : clone !== null,
    cloneAddresses: clone?.addresses ?? [],
  };
}

function devices(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { label: { type: 'string', multiple: true }, online: { type: 'boolean' }, offline: { type: 'boolean' } }, 0);
  const problems: string[] = [];
  if (values.online && values.offline) problems.push('--online and --offline exclude each other: give one');
  const labelArgs = (values.label as string[] | undefined) ?? [];
  const { labels: wanted, problems: labelProblems } = parseLabels(labelArgs);
  problems.push(...labelProblems);
  if (problems.length) throw new UsageError(problems.join('\n'));
  const all = ctx.store.listDevices();
  const list = all.filter((d) => (values.online ? d.onlineSince !== null : values.offline ? d.onlineSince === null : true)
    && Object.entries(wanted).every(([k, v]) => d.labels[k] === v));
  if (values.json) return json(list.map((d) => deviceJson(d, ctx.now, ctx.cloneOf?.(d.name))));
  if (all.length === 0) return ok('', "no devices yet: 'token create' makes an enrollment token\n");
  if (list.length === 0) {
    const filters = [...(values.online ? ['--online'] : []), ...(values.offline ? ['--offline'] : []), ...labelArgs.map((l) => `--label ${l}`)];
    return ok('', `no device matches ${filters.join(' ')}\n`);
  }
  const rows = [['NAME', 'STATUS', 'ONLINE', 'LAST SEEN', 'SINCE', 'ADDRESS', 'AGENT', 'LAST DISCONNECT', 'CLONED?', 'LABELS']];
  for (const d of list) {
    const online = d.onlineSince !== null;
    const clone = ctx.cloneOf?.(d.name);
    rows.push([
      d.name, d.status, online ? 'online' : 'offline',
      online ? 'now' : (iso(d.lastSeen) ?? 'never'),
      iso(d.onlineSince) ?? '-', d.remoteAddress ?? '-', d.agentVersion ?? '-',
      d.lastDisconnectReason ?? '-',
      clone === undefined ? '?' : clone === null ? '-' : `yes: ${clone.addresses.join(',')}`,
      labelText(d.labels),
    ]);
  }
  return ok(table(rows));
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';
}

function tokenCreate(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {
    ttl: { type: 'string' }, name: { type: 'string' }, label: { type: 'string', multiple: true },
    uses: { type: 'string' }, approve: { type: 'boolean' },
  }, 0);
  const problems: string[] = [];
  const ttl = values.ttl === undefined ? LIMITS.tokenDefaultTtlMs : parseDuration(values.ttl as string);
  if (ttl === null || ttl <= 0) problems.push(`--ttl '${values.ttl}' is not a duration like 15m, 1h or 7d`);
  else if (ttl > LIMITS.tokenMaxTtlMs) problems.push(`--ttl is longer than the longest allowed (${LIMITS.tokenMaxTtlMs / 86_400_000}d)`);
  const uses = values.uses === undefined ? 1 : wholeNumber(values.uses as string);
  if (!Number.isInteger(uses) || uses < 1 || uses > 100_000) problems.push(`--uses '${values.uses}' must be a whole number from 1 to 100000`);
  const name = (values.name as string | undefined) ?? null;
  if (name !== null) {
    const p = deviceNameProblem(name);
    if (p) problems.push(p);
    else if (ctx.store.getDevice(name)) problems.push(`a device named '${name}' is enrolled already: 'device rm ${name}' first, or pick another name`);
    if (uses !== 1) problems.push('--name fixes one device name, so it goes with a single use (drop --uses)');
  }
  const { labels, problems: labelProblems } = parseLabels((values.label as string[] | undefined) ?? []);
  problems.push(...labelProblems);
  if (problems.length) throw new UsageError(problems.join('\n'));

  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const expiresAt = ctx.now + ttl!;
  const approve = values.approve === true;
  // Only the secret's hash is kept: the store cannot hand out a working token. The secret
  // is 32 random bytes, so a plain SHA-256 needs no salt or stretching.
  ctx.store.transaction(() => {
    ctx.store.createToken({ id, createdBy: ctx.actor.name, createdAt: ctx.now, expiresAt, usesLeft: uses, name, labels, approve },
      createHash('sha256').update(secret).digest());
    ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: 'token.create', target: name, detail: { id, expiresAt, uses, approve, labels } });
  });
  const token = encodeToken({ relay: ctx.relay.publicAddress, fingerprint: ctx.relay.fingerprint, id, secret });
  if (values.json) return json({ token, id, expiresAt: iso(expiresAt), uses, name, labels, approve, relay: ctx.relay.publicAddress, fingerprint: ctx.relay.fingerprint });
  const what = `${name ? `device '${name}'` : 'any device name (the agent gives --name)'}, ${uses} use${uses === 1 ? '' : 's'}, expires ${iso(expiresAt)}, ${approve ? 'approved on enrollment' : "waits for 'device approve'"}`;
  return ok(token + '\n', `token ${id} for ${what}\non the device, as root: FERRY_TOKEN=TOKEN ferry agent --state-dir /var/lib/ferry-agent\n`);
}

/** Whether a token can still enrol a device, and if not, why. */
function tokenState(t: StoredToken, now: number): 'usable' | 'revoked' | 'expired' | 'used up' {
  if (t.revokedAt !== null) return 'revoked';
  if (t.expiresAt <= now) return 'expired';
  return t.usesLeft <= 0 ? 'used up' : 'usable';
}

function tokenLs(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { all: { type: 'boolean' } }, 0);
  const list = ctx.store.listTokens().map((t) => ({ ...t, state: tokenState(t, ctx.now) })).filter((t) => values.all || t.state === 'usable');
  if (values.json) {
    return json(list.map((t) => ({
      id: t.id, name: t.name, labels: t.labels, usesLeft: t.usesLeft, expiresAt: iso(t.expiresAt), createdBy: t.createdBy,
      createdAt: iso(t.createdAt), approve: t.approve, state: t.state, revokedAt: iso(t.revokedAt),
    })));
  }
  if (list.length === 0) return ok('', values.all ? "no tokens yet: 'token create' makes one\n" : "no usable tokens ('token ls --all' shows expired, used-up and revoked ones)\n");
  return ok(table([
    ['ID', 'NAME', 'LABELS', 'USES LEFT', 'EXPIRES', 'CREATED BY', 'APPROVE', 'STATE'],
    ...list.map((t) => [t.id, t.name ?? '-', labelText(t.labels), String(t.usesLeft), iso(t.expiresAt)!, t.createdBy, t.approve ? 'yes' : 'no', t.state]),
  ]));
}

function tokenRm(ctx: CommandContext, args: string[]): CommandResult {
  const { values, positionals } = parse(args, {}, 1);
  const id = positionals[0]!;
  const token = ctx.store.listTokens().find((t) => t.id === id);
  if (!token) throw new FerryError('FERRY_NOT_FOUND', `no token with id '${id}'; 'token ls --all' lists them`);
  if (token.revokedAt !== null) throw new FerryError('FERRY_CONFLICT', `token ${id} was revoked already`);
  ctx.store.transaction(() => {
    ctx.store.revokeToken(id, ctx.now);
    ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: 'token.rm', target: token.name, detail: { id } });
  });
  return values.json ? json({ id, result: 'revoked' }) : ok(`token ${id} revoked: it enrols no more devices\n`);
}

function deviceLabel(ctx: CommandContext, args: string[]): CommandResult {
  const { values, positionals } = parse(args, {}, 1, true);
  const [name, ...items] = positionals as [string, ...string[]];
  if (items.length === 0) throw new UsageError('give at least one label: key=value to set it, key- to remove it');
  const problems: string[] = [];
  const set: Record<string, string> = {};
  const removed: string[] = [];
  for (const item of items) {
    if (!item.includes('=') && item.endsWith('-')) {
      const key = item.slice(0, -1);
      const p = labelKeyProblem(key);
      if (p) problems.push(p); else removed.push(key);
    } else {
      // The same rules as token create's --label, one item at a time so that each problem is told.
      const parsed = parseLabels([item]);
      problems.push(...parsed.problems);
      Object.assign(set, parsed.labels);
    }
  }
  for (const key of removed) if (key in set) problems.push(`label '${key}' is both set and removed`);
  const device = problems.length ? null : ctx.store.getDevice(name);
  if (!problems.length && !device) throw new FerryError('FERRY_NOT_FOUND', `no device named '${name}'; 'devices' lists them`);
  const labels = { ...device?.labels, ...set };
  for (const key of removed) delete labels[key];
  if (Object.keys(labels).length > LIMITS.maxLabels) problems.push(`too many labels: at most ${LIMITS.maxLabels}`);
  if (problems.length) throw new UsageError(problems.join('\n'));
  ctx.store.transaction(() => {
    ctx.store.setDeviceLabels(name, labels);
    ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: 'device.label', target: name, detail: { set, removed } });
  });
  return values.json ? json({ name, labels }) : ok(`device '${name}' labels: ${labelText(labels)}\n`);
}

function deviceCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb === 'label') return deviceLabel(ctx, args);
  if (verb !== 'approve' && verb !== 'revoke' && verb !== 'rm') throw new UsageError(`unknown device command '${verb ?? ''}': use approve, revoke, rm or label`);
  const { values, positionals } = parse(args, {}, 1);
  const name = positionals[0]!;
  const device = ctx.store.getDevice(name);
  if (!device) throw new FerryError('FERRY_NOT_FOUND', `no device named '${name}'; 'devices' lists them`);
  if (verb === 'approve' && device.status === 'revoked') throw new FerryError('FERRY_CONFLICT', `device '${name}' is revoked; a revoked device cannot be approved again: 'device rm ${name}' and enrol it anew`);
  const done = verb === 'approve' ? 'approved' : verb === 'revoke' ? 'revoked' : 'removed';
  ctx.store.transaction(() => {
    if (verb === 'rm') ctx.store.removeDevice(name);
    else ctx.store.setDeviceStatus(name, verb === 'approve' ? 'approved' : 'revoked');
    ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: `device.${verb}`, target: name, detail: {} });
  });
  ctx.onChange?.(name);
  return values.json ? json({ name, result: done }) : ok(`device '${name}' ${done}\n`);
}

function userCommand(ctx: CommandContext, verb: string | undefined, args: string[]): CommandResult {
  if (verb === 'add') {
    const { values, positionals } = parse(args, { key: { type: 'string', multiple: true }, role: { type: 'string' } }, 1);
    const name = positionals[0]!;
    const problems: string[] = [];
    const p = userNameProblem(name);
    if (p) problems.push(p);
    const role = (values.role as string | undefined) ?? 'operator';
    if (!ROLES.includes(role as Role)) problems.push(`--role '${role}' is not one of ${ROLES.join(', ')}`);
    const keyTexts = (values.key as string[] | undefined) ?? [];
    if (keyTexts.length === 0) problems.push("--key is required: the user's public key, e.g. --key \"$(cat ~/.ssh/id_ed25519.pub)\"");
    const keys: PublicKey[] = [];
    for (const k of keyTexts) {
      try {
        const key = parsePublicKey(k);
        if (keys.some((other) => other.fingerprint === key.fingerprint)) problems.push(`--key ${key.fingerprint} is given twice`);
        else keys.push(key);
      } catch (err) { problems.push(`--key: ${(err as Error).message}`); }
    }
    if (problems.length) throw new UsageError(problems.join('\n'));
    ctx.store.transaction(() => {
      ctx.store.addUser(name, [role], keys.map((k) => ({ fingerprint: k.fingerprint, line: k.line })), ctx.now);
      ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: 'user.add', target: name, detail: { role, keys: keys.map((k) => k.fingerprint) } });
    });
    ctx.onChange?.();
    return values.json ? json({ name, role, keys: keys.map((k) => k.fingerprint) }) : ok(`user '${name}' added as ${role}\n`);
  }
  if (verb === 'rm') {
    const { values, positionals } = parse(args, {}, 1);
    const name = positionals[0]!;
    if (name === ctx.actor.name) throw new FerryError('FERRY_CONFLICT', 'you cannot remove yourself; ask another admin');
    const user = ctx.store.getUser(name);
    if (!user) throw new FerryError('FERRY_NOT_FOUND', `no user named '${name}'; 'users' lists them`);
    if (user.roles.includes('admin') && ctx.store.listUsers().filter((u) => u.roles.includes('admin')).length === 1) {
      throw new FerryError('FERRY_CONFLICT', `'${name}' is the last admin; add another admin first`);
    }
    ctx.store.transaction(() => {
      ctx.store.removeUser(name);
      ctx.store.audit({ at: ctx.now, actor: ctx.actor.name, action: 'user.rm', target: name, detail: {} });
    });
    ctx.onChange?.();
    return values.json ? json({ name, result: 'removed' }) : ok(`user '${name}' removed\n`);
  }
  throw new UsageError(`unknown user command '${verb ?? ''}': use add or rm`);
}

function users(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {}, 0);
  const list = ctx.store.listUsers();
  if (values.json) return json(list.map((u) => ({ name: u.name, role: u.roles.join(','), createdAt: iso(u.createdAt), keys: u.keys.map((k) => k.fingerprint) })));
  return ok(table([['NAME', 'ROLE', 'KEYS'], ...list.map((u) => [u.name, u.roles.join(','), u.keys.map((k) => k.fingerprint).join(' ')])]));
}

function audit(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { since: { type: 'string' }, device: { type: 'string' }, limit: { type: 'string' } }, 0);
  const problems: string[] = [];
  let since: number | undefined;
  if (values.since !== undefined) {
    const d = parseDuration(values.since as string);
    const t = /^\d{4}-\d{2}-\d{2}/.test(values.since as string) ? Date.parse(values.since as string) : NaN;
    if (d !== null) since = ctx.now - d;
    else if (!Number.isNaN(t)) since = t;
    else problems.push(`--since '${values.since}' is neither a duration (1h) nor a date (2026-01-31T12:00Z)`);
  }
  const limit = values.limit === undefined ? 100 : wholeNumber(values.limit as string);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) problems.push('--limit must be a whole number from 1 to 10000');
  if (problems.length) throw new UsageError(problems.join('\n'));
  const list = ctx.store.listAudit({ since, device: values.device as string | undefined, limit });
  if (values.json) return json(list.map((a) => ({ ...a, at: iso(a.at) })));
  return ok(list.map((a) => `${iso(a.at)}  ${a.actor}  ${a.action}${a.target ? ' ' + a.target : ''}${Object.keys(a.detail).length ? ' ' + JSON.stringify(a.detail) : ''}`).join('\n') + (list.length ? '\n' : ''));
}

/**
 * What an operator's OpenSSH needs to reach devices as NAME.ferry: an ssh_config with the
 * relay as ProxyJump, and known_hosts lines for the relay and for every device that reported
 * its host key, so that the first connection has no trust-on-first-use prompt and a changed
 * device key is a loud error.
 */
function sshConfig(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, { 'known-hosts': { type: 'boolean' }, user: { type: 'string' } }, 0);
  // Run locally on the relay host, the actor is no relay user: the config needs a real one.
  const user = (values.user as string | undefined) ?? (ctx.actor.keyFingerprint === null ? null : ctx.actor.name);
  if (user === null && !values['known-hosts']) throw new UsageError('give --user NAME: the relay user the config should log in as');
  const { host, port } = relayHostPort(ctx.relay.publicAddress);
  const relayHost = port === 22 ? host : `[${host}]:${port}`;
  const devices = ctx.store.listDevices().filter((d) => d.status === 'approved');
  const knownHosts = [
    ...(ctx.relay.hostKeyLine ? [`${relayHost} ${ctx.relay.hostKeyLine}`] : []),
    ...devices.filter((d) => d.hostKeyLine).map((d) => `${d.name}${DEVICE_HOST_SUFFIX},${d.name} ${d.hostKeyLine}`),
  ];
  const common = ['  UserKnownHostsFile ~/.ssh/ferry_known_hosts', '  StrictHostKeyChecking yes'];
  const config = [
    `# ferry: reach a device as NAME${DEVICE_HOST_SUFFIX} (e.g. ssh pi@garage-cam${DEVICE_HOST_SUFFIX}) through the relay at ${ctx.relay.publicAddress}.`,
    '# Save this as ~/.ssh/ferry.conf and put "Include ferry.conf" at the top of ~/.ssh/config; save the',
    `# output of 'ssh-config --known-hosts' as ~/.ssh/ferry_known_hosts (again whenever devices are added).`,
    'Host ferry-relay', `  HostName ${host}`, `  Port ${port}`, `  User ${user}`, ...common, '',
    `Host *${DEVICE_HOST_SUFFIX}`, '  ProxyJump ferry-relay', ...common, '',
  ].join('\n');
  if (values.json) return json({ config, knownHosts });
  return ok(values['known-hosts'] ? knownHosts.join('\n') + '\n' : config);
}

function whoami(ctx: CommandContext, args: string[]): CommandResult {
  const { values } = parse(args, {}, 0);
  const { name, role, keyFingerprint } = ctx.actor;
  return values.json ? json({ name, role, keyFingerprint }) : ok(`${name} (${role})${keyFingerprint ? ` key ${keyFingerprint}` : ''}\n`);
}

/**
 * Runs one operator command. Every expected failure becomes a message and an exit code;
 * only the unexpected (a bug, a failing disk) is thrown, for the caller to log and report.
 */
export function runCommand(ctx: CommandContext, words: readonly string[]): CommandResult {
  const [command, ...rest] = words;
  try {
    // `devices --help` is asking, not a bad flag: every command's flags are in the one help text.
    if (command === undefined || command === 'help' || words.includes('--help') || words.includes('-h')) return ok(helpText(ctx.relay.publicAddress, hintUser(ctx)) + '\n');
    const allowed = mayRunCommand(ctx.actor.role, command);
    if (!allowed.allow) throw new FerryError('FERRY_PERMISSION_DENIED', allowed.message);
    switch (command) {
      case 'whoami': return whoami(ctx, rest);
      case 'ssh-config': return sshConfig(ctx, rest);
      case 'devices': return devices(ctx, rest);
      case 'users': return users(ctx, rest);
      case 'audit': return audit(ctx, rest);
      case 'token':
        if (rest[0] === 'create') return tokenCreate(ctx, rest.slice(1));
        if (rest[0] === 'ls') return tokenLs(ctx, rest.slice(1));
        if (rest[0] === 'rm') return tokenRm(ctx, rest.slice(1));
        throw new UsageError(`unknown token command '${rest[0] ?? ''}': use create, ls or rm`);
      case 'device': return deviceCommand(ctx, rest[0], rest.slice(1));
      case 'user': return userCommand(ctx, rest[0], rest.slice(1));
      default: throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) return { code: 2, stdout: '', stderr: `ferry: ${err.message}\n${command === undefined || /^unknown/.test(err.message) ? `\n${helpText(ctx.relay.publicAddress, hintUser(ctx))}\n` : "run 'help' for every command and its flags\n"}` };
    if (isFerryError(err)) return { code: 1, stdout: '', stderr: `ferry: ${err.message}\n` };
    throw err;
  }
}
