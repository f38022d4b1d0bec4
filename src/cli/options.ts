/** Turning argv, environment and an optional JSON config file into typed values, with every problem reported at once. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDuration } from '../common/duration.ts';
import { FerryError } from '../common/errors.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../common/log.ts';
import { parseHostPort } from '../protocol/host-port.ts';

/** A flag: its parseArgs type, the environment variable that may set it, and its help line. */
export interface FlagSpec { type: 'string' | 'boolean'; multiple?: boolean; env?: string; help: string }

/** Parsed flags plus a problem list that the caller turns into one error. */
export class Options {
  readonly problems: string[] = [];
  readonly #values: Record<string, unknown>;
  readonly positionals: string[];

  /** `command` names the subcommand (`relay`) in usage errors, which point at `ferry help COMMAND`. */
  constructor(argv: string[], specs: Record<string, FlagSpec>, env: NodeJS.ProcessEnv, opts: { command?: string; allowPositionals?: boolean } = {}) {
    const options: ParseArgsConfig['options'] = { config: { type: 'string' } };
    for (const [name, s] of Object.entries(specs)) options[name] = { type: s.type, multiple: s.multiple ?? false };
    const allowPositionals = opts.allowPositionals ?? false;
    const usage = (what: string) => new FerryError('FERRY_USAGE', opts.command === undefined ? what : `${what} for \`ferry ${opts.command}\`; see \`ferry help ${opts.command}\``);
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options, strict: true, allowPositionals });
    } catch (err) {
      // parseArgs's own text names JavaScript ("positional arguments", "<value>"); say it in the CLI's terms instead.
      throw usage(usageProblem(argv, options, allowPositionals) ?? (err as Error).message.split('\n')[0]!);
    }
    this.positionals = parsed.positionals;
    const fromFile: Record<string, unknown> = {};
    const configFile = parsed.values.config as string | undefined;
    if (configFile !== undefined) {
      try {
        Object.assign(fromFile, JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>);
      } catch (err) {
        this.problems.push(`--config ${configFile}: ${(err as Error).message}`);
      }
      for (const key of Object.keys(fromFile)) if (!(key in specs)) this.problems.push(`--config ${configFile}: unknown key '${key}'`);
    }
    // Precedence: flag, then environment, then config file.
    this.#values = {};
    for (const [name, s] of Object.entries(specs)) {
      const flag = parsed.values[name];
      const envValue = s.env === undefined ? undefined : env[s.env];
      this.#values[name] = flag ?? (envValue !== undefined && envValue !== '' ? (s.multiple ? [envValue] : s.type === 'boolean' ? envValue === '1' || envValue === 'true' : envValue) : fromFile[name]);
    }
  }

  string(name: string): string | null {
    const v = this.#values[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') { this.problems.push(`--${name} must be a string`); return null; }
    return v;
  }

  strings(name: string): string[] {
    const v = this.#values[name];
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? v.map(String) : [String(v)];
  }

  boolean(name: string): boolean { return this.#values[name] === true; }

  duration(name: string, fallback: number): number {
    const v = this.string(name);
    if (v === null) return fallback;
    const ms = parseDuration(v);
    if (ms === null || ms <= 0) { this.problems.push(`--${name} '${v}' is not a duration like 500ms, 20s or 5m`); return fallback; }
    return ms;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    // A JSON config file writes numbers as numbers; flags and the environment give strings.
    const raw = this.#values[name];
    const v = typeof raw === 'number' ? String(raw) : this.string(name);
    if (v === null) return fallback;
    const n = /^\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) { this.problems.push(`--${name} '${v}' must be a whole number from ${min} to ${max}`); return fallback; }
    return n;
  }

  hostPort(name: string, fallback: { host: string; port: number } | null, allowPortZero = false): { host: string; port: number } | null {
    const v = this.string(name);
    if (v === null) return fallback;
    // Port 0 (pick a free port) is valid only where allowed; the host is checked the same way either way.
    const zero = allowPortZero && /:0$/.test(v) ? parseHostPort(v.slice(0, -1) + '1') : null;
    const a = zero ? { host: zero.host, port: 0 } : parseHostPort(v);
    if (!a) { this.problems.push(`--${name} '${v}' must be HOST:PORT`); return fallback; }
    return a;
  }

  logLevel(): LogLevel {
    const v = this.string('log-level') ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(v)) { this.problems.push(`--log-level '${v}' is not one of ${LOG_LEVELS.join(', ')}`); return 'info'; }
    return v as LogLevel;
  }

  /** --log-format, or null when not given (then the terminal decides: see chooseLogFormat). */
  logFormat(): LogFormat | null {
    const v = this.string('log-format');
    if (v === null) return null;
    if (!(LOG_FORMATS as readonly string[]).includes(v)) { this.problems.push(`--log-format '${v}' is not one of ${LOG_FORMATS.join(', ')}`); return null; }
    return v as LogFormat;
  }

  /** Throws one FerryError listing every problem, plus `more`. */
  check(more: string[] = []): void {
    const all = [...this.problems, ...more];
    if (all.length) throw new FerryError('FERRY_CONFIG_INVALID', all.join('\n'));
  }
}

/** What is wrong with argv in words of the command line, or null when parseArgs's own message must do. */
function usageProblem(argv: string[], options: NonNullable<ParseArgsConfig['options']>, allowPositionals: boolean): string | null {
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional' && !allowPositionals) return `unexpected argument '${t.value}'`;
    if (t.kind !== 'option') continue;
    const spec = options[t.name];
    if (spec === undefined) return `unknown option ${t.rawName}`;
    if (spec.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) return `${t.rawName} needs a value`;
    if (spec.type === 'boolean' && t.inlineValue) return `${t.rawName} takes no value`;
  }
  return null;
}

/** Whether argv asks for help (`--help` or `-h` anywhere before a `--`). */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Help text for a flag table. */
export function flagHelp(specs: Record<string, FlagSpec>): string {
  return Object.entries(specs).map(([name, s]) => `${`  --${name}${s.type === 'string' ? ' VALUE' : ''}`.padEnd(34)} ${s.help}` + (s.env ? ` [env ${s.env}]` : '')).join('\n');
}
