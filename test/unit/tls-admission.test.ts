// Covers the counting of src/relay/http/tls-admission.ts: each address's share (an IPv6 /64
// as one), the overall bound, eviction of the oldest stale handshake only, and release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressGroup, TlsHandshakeCount } from '../../src/relay/http/tls-admission.ts';

test('an address has its share; at the overall bound the oldest handshake is evicted once it is stale, never a fresh one', () => {
  const c = new TlsHandshakeCount({ max: 3, perAddress: 2, evictAfterMs: 1_000 });
  const evicted: string[] = [];
  const take = (id: string, address: string, now: number) => c.take({ id } as object, address, now, () => evicted.push(id));
  const ids = new Map<string, object>();
  const takeId = (id: string, address: string, now: number) => {
    const o = { id };
    ids.set(id, o);
    return c.take(o, address, now, () => evicted.push(id));
  };
  assert.deepEqual([takeId('a1', '10.0.0.1', 0), takeId('a2', '10.0.0.1', 0), take('a3', '10.0.0.1', 0)], [true, true, false], "10.0.0.1's share is 2");
  assert.equal(takeId('b1', '10.0.0.2', 100), true);
  assert.equal(take('c1', '10.0.0.3', 500), false, 'full, and the oldest is younger than the eviction age');
  assert.equal(takeId('c2', '10.0.0.3', 1_000), true, 'full, and the oldest (a1, 1000 ms) is evicted for it');
  assert.deepEqual([evicted, c.running], [['a1'], 3]);
  c.release(ids.get('a1')!);
  assert.equal(c.running, 3, 'an evicted handshake was released already');
  for (const id of ['a2', 'b1', 'c2']) c.release(ids.get(id)!);
  assert.equal(c.running, 0);
});

test('an IPv6 /64 is one address; IPv4-mapped addresses are their IPv4', () => {
  assert.equal(addressGroup('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressGroup('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressGroup('::1'), '0:0:0:0::/64');
  assert.equal(addressGroup('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressGroup('192.0.2.7'), '192.0.2.7');
});
