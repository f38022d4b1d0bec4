// Covers src/relay/audit-rate.ts: so many rows per window, then one summary per window, also when the source goes quiet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditRateLimit } from '../../src/relay/audit-rate.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

test('a flood gives perWindow rows and one summary per window with the count left out', () => {
  const clock = new FakeClock();
  const summaries: { suppressed: number; from: number; until: number }[] = [];
  const limit = new AuditRateLimit(clock, { perWindow: 3, windowMs: 60_000 }, (s) => summaries.push(s));
  const taken = Array.from({ length: 200 }, () => limit.take()).filter(Boolean).length;
  assert.equal(taken, 3);
  assert.deepEqual(summaries, [], 'the summary waits for the end of the window');
  clock.advance(60_000);
  assert.deepEqual(summaries, [{ suppressed: 197, from: 1_000_000, until: 1_060_000 }]);
  assert.equal(clock.pending, 0);
  assert.equal(limit.take(), true, 'a new window writes again');
});

test('no summary when nothing was left out; flush writes a pending one at once, once', () => {
  const clock = new FakeClock();
  const summaries: number[] = [];
  const limit = new AuditRateLimit(clock, { perWindow: 2, windowMs: 1_000 }, (s) => summaries.push(s.suppressed));
  limit.take(); limit.take();
  clock.advance(5_000);
  assert.deepEqual(summaries, []);
  limit.take(); limit.take(); limit.take();
  limit.flush();
  limit.flush();
  assert.deepEqual(summaries, [1]);
  assert.equal(clock.pending, 0);
});
