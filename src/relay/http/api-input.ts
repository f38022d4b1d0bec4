/**
 * Reading the HTTP API's inputs: query strings and JSON bodies into the operations' typed
 * inputs. Every problem is collected and thrown at once as FERRY_USAGE (400), as the
 * command line does; the rules on the values themselves stay in the operations.
 */
import type { FastifyRequest } from 'fastify';
import { parseDuration } from '../../common/duration.ts';
import { FerryError } from '../../common/errors.ts';
import type { RelayContext } from '../context.ts';
import { perform, type Operation } from '../operations/index.ts';
import { operationContext } from './op-context.ts';
import { requireWeb } from './web-auth.ts';

/** Runs `op` as the request's signed-in user (401 without a session), through `perform`. */
export function act<I, R>(ctx: RelayContext, req: FastifyRequest, op: Operation<I, R>, input: I): R {
  return perform(operationContext(ctx), requireWeb(req), op, input);
}

/** Collects the problems of one request's inputs; `done` throws them all at once. */
export class Inputs {
  readonly problems: string[] = [];
  readonly #query: Record<string, unknown>;
  readonly #body: Record<string, unknown>;

  constructor(req: FastifyRequest) {
    this.#query = (req.query ?? {}) as Record<string, unknown>;
    const body = req.body;
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) this.problems.push('the body must be a JSON object');
    this.#body = body !== null && typeof body === 'object' && !Array.isArray(body) ? body as Record<string, unknown> : {};
  }

  /** Throws FERRY_USAGE with every problem found, if any. */
  done(): void {
    if (this.problems.length) throw new FerryError('FERRY_USAGE', this.problems.join('\n'));
  }

  /** A query parameter's single value (the last one when repeated), or undefined. */
  query(name: string): string | undefined {
    const v = this.#query[name];
    const last = Array.isArray(v) ? v.at(-1) : v;
    return typeof last === 'string' ? last : undefined;
  }

  /** Every value of a repeatable query parameter. */
  queryAll(name: string): string[] {
    const v = this.#query[name];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
  }

  /** A whole-number query parameter, or undefined. */
  queryInt(name: string): number | undefined {
    const text = this.query(name);
    if (text === undefined || text === '') return undefined;
    if (!/^\d{1,9}$/.test(text)) { this.problems.push(`${name} must be a whole number, not '${text}'`); return undefined; }
    return Number(text);
  }

  /** `true` or `false`, or undefined. */
  queryBool(name: string): boolean | undefined {
    const text = this.query(name);
    if (text === undefined || text === '') return undefined;
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    this.problems.push(`${name} must be true or false, not '${text}'`);
    return undefined;
  }

  /** A time: an ISO date, milliseconds since 1970, or a duration before `now` (1h). */
  queryTime(name: string, now: number): number | undefined {
    const text = this.query(name);
    if (text === undefined || text === '') return undefined;
    if (/^\d{10,}$/.test(text)) return Number(text);
    const d = parseDuration(text);
    if (d !== null) return now - d;
    const t = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(t)) { this.problems.push(`${name} '${text}' is neither a date (2026-01-31T12:00Z), milliseconds since 1970, nor a duration (1h)`); return undefined; }
    return t;
  }

  /** `k=v` items of a repeatable query parameter, as labels. */
  queryLabels(name: string): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const item of this.queryAll(name)) {
      const i = item.indexOf('=');
      if (i <= 0) this.problems.push(`${name} '${item}' must be key=value`);
      else labels[item.slice(0, i)] = item.slice(i + 1);
    }
    return labels;
  }

  /** A string field of the body; `required` reports its absence. */
  string(name: string, required: true): string;
  string(name: string, required?: false): string | undefined;
  string(name: string, required = false): string | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) {
      if (required) this.problems.push(`give "${name}" in the body`);
      return required ? '' : undefined;
    }
    if (typeof v !== 'string') { this.problems.push(`"${name}" must be a string`); return required ? '' : undefined; }
    return v;
  }

  /** A list of strings in the body, or undefined when absent. */
  strings(name: string, required = false): string[] | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) {
      if (required) this.problems.push(`give "${name}" in the body: a list of strings`);
      return required ? [] : undefined;
    }
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) { this.problems.push(`"${name}" must be a list of strings`); return undefined; }
    return v as string[];
  }

  /** A string → string object in the body, or undefined. */
  record(name: string): Record<string, string> | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
      this.problems.push(`"${name}" must be an object of strings, like {"site": "berlin"}`);
      return undefined;
    }
    return v as Record<string, string>;
  }

  /** A whole number in the body, or undefined. */
  integer(name: string): number | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) { this.problems.push(`"${name}" must be a whole number`); return undefined; }
    return v;
  }

  /** A boolean in the body, or undefined. */
  boolean(name: string): boolean | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') { this.problems.push(`"${name}" must be true or false`); return undefined; }
    return v;
  }

  /** A duration in the body: a string like "1h" or a number of seconds; undefined when absent. */
  duration(name: string): number | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v * 1000;
    const ms = typeof v === 'string' ? parseDuration(v) : null;
    if (ms === null || ms <= 0) { this.problems.push(`"${name}" must be a duration like "15m", "1h" or "7d", or a number of seconds`); return undefined; }
    return ms;
  }
}
