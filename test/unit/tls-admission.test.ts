// Covers the counting of src/relay/http/tls-admission.ts: the overall bound, each address's
// share, and places given back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TlsHandshakeCount } from '../../src/relay/http/tls-admission.ts';

test('handshakes are bounded overall and per address, and a release frees a place for anyone', () => {
  const c = new TlsHandshakeCount({ max: 3, perAddress: 2 });
  assert.deepEqual([c.take('a'), c.take('a'), c.take('a')], [true, true, false], "a's share is 2");
  assert.deepEqual([c.take('b'), c.take('c')], [true, false], 'the overall bound is 3');
  assert.equal(c.running, 3);
  c.release('a');
  assert.deepEqual([c.take('c'), c.take('a')], [true, false], 'the freed place goes to whoever asks next');
  c.release('a');
  assert.equal(c.take('a'), true, "a's own place came back");
  for (const who of ['a', 'b', 'c']) c.release(who);
  assert.equal(c.running, 0);
});
