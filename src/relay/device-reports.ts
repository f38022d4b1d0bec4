/**
 * Device reports as the relay takes them in: lines read from the key-watch channel, each
 * parsed (protocol/device-report.ts) and turned into an audit row marked as the device's
 * word. Pure; device-link.ts does the reading and the rate limit.
 */
import { StringDecoder } from 'node:string_decoder';
import { MAX_REPORT_LINE, parseDeviceReport, type DeviceReport } from '../protocol/device-report.ts';

/** Splits a byte stream into lines, holding at most one unfinished line of MAX_REPORT_LINE bytes. */
export class ReportLines {
  #partial = '';
  /** Keeps a UTF-8 character that a chunk boundary splits whole. */
  readonly #decoder = new StringDecoder('utf8');
  /** Inside an over-long line: everything up to its newline is dropped. */
  #skipping = false;
  /** Lines dropped because they were too long. */
  tooLong = 0;

  /** The complete lines in `chunk` (with what was held from before). */
  push(chunk: Buffer | string): string[] {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const parts = text.split('\n');
    const last = parts.pop()!;
    const lines: string[] = [];
    for (const part of parts) {
      if (this.#skipping) this.#skipping = false;
      else {
        const line = this.#partial + part;
        if (line.length > MAX_REPORT_LINE) this.tooLong++;
        else if (line.length > 0) lines.push(line);
      }
      this.#partial = '';
    }
    if (this.#skipping) return lines;
    this.#partial += last;
    if (this.#partial.length > MAX_REPORT_LINE) {
      this.#partial = '';
      this.#skipping = true;
      this.tooLong++;
    }
    return lines;
  }
}

/** An audit row for a report from `device`: action `ssh.EVENT`, actor the reported operator (or the device), source 'device'. */
export function reportAuditEntry(device: string, r: DeviceReport, now: number): { at: number; actor: string; action: string; target: string; detail: Record<string, unknown>; source: 'device' } {
  return {
    at: now,
    actor: r.operator ?? device,
    action: `ssh.${r.event}`,
    target: device,
    // The device's own clock, kept beside the relay's: they may differ.
    detail: { ...r.detail, login: r.login, reportedAt: r.at },
    source: 'device',
  };
}

/** Parses the lines, keeping the reports the relay records and counting the rest. */
export function parseReports(lines: readonly string[]): { reports: DeviceReport[]; bad: number } {
  const reports: DeviceReport[] = [];
  let bad = 0;
  for (const line of lines) {
    const r = parseDeviceReport(line);
    if (r) reports.push(r); else bad++;
  }
  return { reports, bad };
}
