// Covers src/net/backoff.ts: capped exponential backoff with full jitter, with an injected random source.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/net/backoff.ts';

const cfg = { baseMs: 500, maxMs: 60_000 };
const ALMOST_ONE = 1 - Number.EPSILON;

test('random 0 gives no wait at all', () => {
  for (let attempt = 0; attempt < 40; attempt++) assert.equal(backoffDelay(cfg, attempt, () => 0), 0);
});

test('the window doubles with each attempt until it reaches the cap', () => {
  const highest = (attempt: number) => backoffDelay(cfg, attempt, () => ALMOST_ONE);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(highest), [499, 999, 1999, 3999, 7999, 15999, 31999, 59999]);
  assert.equal(highest(8), 59_999, 'capped at maxMs');
  assert.equal(highest(1000), 59_999, 'huge attempt numbers do not overflow');
  assert.equal(backoffDelay(cfg, 3, () => 0.5), 2000, 'half the window at random 0.5');
});

test('full jitter: always in [0, min(max, base * 2^attempt)) and integer', () => {
  let seed = 42;
  const random = () => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31; };
  for (let attempt = 0; attempt < 20; attempt++) {
    const ceiling = Math.min(cfg.maxMs, cfg.baseMs * 2 ** attempt);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(cfg, attempt, random);
      assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `attempt ${attempt}: ${d} not in [0, ${ceiling})`);
    }
  }
});

test('uses Math.random by default and stays in bounds', () => {
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay({ baseMs: 100, maxMs: 1000 }, 2);
    assert.ok(d >= 0 && d < 400);
  }
});
