// The agent's queue of reports for the relay: bounded while no link is up (the oldest
// dropped and counted, the count sent with the next report that goes out), and held back by
// a channel that is full instead of growing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReportQueue } from '../../src/agent/report-queue.ts';
import { parseDeviceReport, type DeviceReport } from '../../src/protocol/device-report.ts';

const report = (n: number): DeviceReport => ({ event: 'login', at: n, operator: 'alice', login: 'pi', detail: { n } });

/** A writer that takes `room` lines before it says it is full, and can be drained. */
function writer(room = Infinity) {
  const lines: string[] = [];
  let drain: (() => void) | null = null;
  let left = room;
  const out = {
    lines,
    open: true,
    w: { writable: () => out.open, write: (line: string) => { lines.push(line); return --left > 0; }, onDrain: (fn: () => void) => { drain = fn; } },
    drain(more: number) { left = more; drain?.(); },
  };
  return out;
}

test('while no link is up, the queue holds at most its bound: the oldest are dropped and counted', () => {
  const q = new ReportQueue(10);
  for (let i = 0; i < 25; i++) q.push(report(i));
  assert.deepEqual(q.stats, { queued: 10, dropped: 15 });
});

test('when a link comes up, the queued reports go out in order, the first one carrying how many were dropped', () => {
  const q = new ReportQueue(3);
  for (let i = 0; i < 5; i++) q.push(report(i));
  const out = writer();
  q.attach(out.w);
  const sent = out.lines.map((l) => parseDeviceReport(l.trimEnd())!);
  assert.deepEqual(sent.map((r) => r.at), [2, 3, 4]);
  assert.equal(sent[0]!.detail.droppedBefore, 2);
  assert.equal(sent[1]!.detail.droppedBefore, undefined, 'the count goes once');
  assert.deepEqual(q.stats, { queued: 0, dropped: 0 });
  q.push(report(9));
  assert.equal(parseDeviceReport(out.lines[3]!.trimEnd())!.at, 9, 'later reports go out at once');
});

test('a full channel holds reports back until it drains; a detached link takes nothing more', () => {
  const q = new ReportQueue(100);
  const out = writer(2);
  q.attach(out.w);
  for (let i = 0; i < 5; i++) q.push(report(i));
  assert.equal(out.lines.length, 2, 'writing stopped when the channel said it was full');
  assert.equal(q.stats.queued, 3);
  out.drain(Infinity);
  assert.equal(out.lines.length, 5);
  q.detach(out.w);
  q.push(report(5));
  assert.equal(out.lines.length, 5);
  assert.equal(q.stats.queued, 1);
});

test('a writer that is closing takes nothing: the reports stay queued for the next link', () => {
  const q = new ReportQueue(100);
  const closing = writer();
  closing.open = false;
  q.attach(closing.w);
  q.push(report(1));
  assert.equal(closing.lines.length, 0);
  const next = writer();
  q.attach(next.w);
  assert.deepEqual(next.lines.map((l) => parseDeviceReport(l.trimEnd())!.at), [1]);
});
