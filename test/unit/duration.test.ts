// Covers src/common/duration.ts: parsing 90s, 15m, 1h30m and refusing everything else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/common/duration.ts';

test('single units', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('0s'), 0);
});

test('combined units add up', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1d2h3m4s5ms'), 86_400_000 + 7_200_000 + 180_000 + 4_000 + 5);
  assert.equal(parseDuration('1m500ms'), 60_500, "'ms' is not read as minutes followed by 's'");
});

test('anything that is not entirely a duration is null', () => {
  for (const text of ['', '1', 'h', '1H', '1.5h', '-1h', '1h ', ' 1h', '1 h', '1w', '1hx', 'x1h', '1h,30m', 'ms', '+5m']) {
    assert.equal(parseDuration(text), null, JSON.stringify(text));
  }
});
