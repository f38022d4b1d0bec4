/**
 * The device's reports on their way to the relay: written to the live link's key-watch
 * channel when there is one, held (a bounded number, the oldest dropped first) while there
 * is none or while the channel is full.
 */
import { encodeDeviceReport, type DeviceReport } from '../protocol/device-report.ts';

/**
 * Where queued reports go: `write` returns false when the writer wants no more until
 * `onDrain` calls back; `writable` is false once it is closing (nothing is taken from the
 * queue then, so nothing is lost to a channel on its way out).
 */
export interface ReportWriter { writable(): boolean; write(line: string): boolean; onDrain(fn: () => void): void }

/** A bounded queue of reports for the relay. */
export class ReportQueue {
  readonly #max: number;
  readonly #items: DeviceReport[] = [];
  #writer: ReportWriter | null = null;
  #waiting = false;
  /** Reports dropped since the last one that went out; the next one sent carries the count. */
  #dropped = 0;

  /** `max`: most reports held while they cannot be sent. */
  constructor(max: number) {
    this.#max = max;
  }

  /** How many reports wait, and how many were dropped since one last went out. */
  get stats(): { queued: number; dropped: number } {
    return { queued: this.#items.length, dropped: this.#dropped };
  }

  /** Queues one report and sends what it can. */
  push(r: DeviceReport): void {
    this.#items.push(r);
    if (this.#items.length > this.#max) {
      this.#items.shift();
      this.#dropped++;
    }
    this.#flush();
  }

  /** Sends to `writer` from now on (a link came up), starting with what has queued. */
  attach(writer: ReportWriter): void {
    this.#writer = writer;
    this.#waiting = false;
    writer.onDrain(() => {
      if (this.#writer !== writer) return;
      this.#waiting = false;
      this.#flush();
    });
    this.#flush();
  }

  /** Stops sending to `writer` (its link went down); reports queue until the next attach. */
  detach(writer: ReportWriter): void {
    if (this.#writer === writer) this.#writer = null;
  }

  #flush(): void {
    const w = this.#writer;
    while (w && !this.#waiting && this.#items.length > 0 && w.writable()) {
      let r = this.#items.shift()!;
      // The relay learns how many reports it will never see, on the first one it does.
      if (this.#dropped > 0) {
        r = { ...r, detail: { droppedBefore: this.#dropped, ...r.detail } };
        this.#dropped = 0;
      }
      if (!w.write(encodeDeviceReport(r))) this.#waiting = true;
    }
  }
}
