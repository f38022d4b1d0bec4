// Covers src/agent/endpoints.ts: the sticky order, the staggered race on fake dialers and a fake clock, and the error when all fail.
import assert from 'node:assert/strict';
import { PassThrough, type Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { endpointEntries, endpointListDialer, raceDialers, tryOrder } from '../../src/agent/endpoints.ts';
import type { ProxySettings } from '../../src/agent/proxy-choice.ts';
import { FerryError } from '../../src/common/errors.ts';
import { isUnreachable, markUnreachable, type Dialer } from '../../src/net/dialer.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

/** A dialer whose attempts the test settles by hand. */
function fakeDialer(label: string) {
  const calls: { timeoutMs: number; stream: PassThrough; succeed(): void; fail(err: unknown): void }[] = [];
  const dialer: Dialer = {
    label,
    dial: (timeoutMs) => new Promise<Duplex>((resolve, reject) => {
      const stream = new PassThrough();
      calls.push({ timeoutMs, stream, succeed: () => resolve(stream), fail: reject });
    }),
  };
  return { dialer, calls };
}

/** Lets settled promises run their callbacks. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('endpoint order', () => {
  test('the last good endpoint comes first, the rest keep their order', () => {
    assert.deepEqual(tryOrder(['a', 'b', 'c'], undefined), ['a', 'b', 'c']);
    assert.deepEqual(tryOrder(['a', 'b', 'c'], 'c'), ['c', 'a', 'b']);
    assert.deepEqual(tryOrder(['a', 'b', 'c'], 'gone'), ['a', 'b', 'c']);
  });
});

describe('staggered race', () => {
  test('the next endpoint starts after the fallback delay, and the first to connect wins; a later one is closed', async () => {
    const clock = new FakeClock();
    const a = fakeDialer('a');
    const b = fakeDialer('b');
    const race = raceDialers([a.dialer, b.dialer], 15_000, { clock, fallbackMs: 3_000 });
    assert.equal(a.calls.length, 1);
    assert.equal(a.calls[0]!.timeoutMs, 15_000);
    assert.equal(b.calls.length, 0);
    clock.advance(2_999);
    assert.equal(b.calls.length, 0);
    clock.advance(1);
    assert.equal(b.calls.length, 1);
    assert.equal(b.calls[0]!.timeoutMs, 12_000, 'a later start gets what is left of the timeout');
    b.calls[0]!.succeed();
    assert.equal((await race).index, 1);
    a.calls[0]!.succeed();
    await flush();
    assert.equal(a.calls[0]!.stream.destroyed, true, 'the loser is closed');
    assert.equal(clock.pending, 0);
  });

  test('a failure starts the next at once; the first endpoint may still win', async () => {
    const clock = new FakeClock();
    const [a, b, c] = [fakeDialer('a'), fakeDialer('b'), fakeDialer('c')];
    const race = raceDialers([a.dialer, b.dialer, c.dialer], 15_000, { clock, fallbackMs: 3_000 });
    a.calls[0]!.fail(new Error('refused'));
    await flush();
    assert.equal(b.calls.length, 1);
    assert.equal(c.calls.length, 0);
    clock.advance(3_000);
    assert.equal(c.calls.length, 1);
    c.calls[0]!.succeed();
    const won = await race;
    assert.equal(won.index, 2);
    b.calls[0]!.fail(new Error('late'));
    await flush();
  });

  test('all failing: one error naming each endpoint and its reason; unreachable only when all were', async () => {
    const clock = new FakeClock();
    const [a, b] = [fakeDialer('relay.test:2222'), fakeDialer('wss://relay.test/v1/agent')];
    const race = raceDialers([a.dialer, b.dialer], 15_000, { clock, fallbackMs: 3_000 });
    a.calls[0]!.fail(markUnreachable(new FerryError('FERRY_CONNECT_FAILED', 'cannot connect: ECONNREFUSED')));
    await flush();
    b.calls[0]!.fail(new FerryError('FERRY_CONNECT_FAILED', 'the relay is busy; retrying (503)'));
    const err = await race.then(() => null, (e: unknown) => e as FerryError);
    assert.ok(err instanceof FerryError);
    assert.equal(err.code, 'FERRY_CONNECT_FAILED');
    assert.match(err.message, /relay\.test:2222: cannot connect: ECONNREFUSED; wss:\/\/relay\.test\/v1\/agent: the relay is busy/);
    assert.equal(isUnreachable(err), false);

    const [c, d] = [fakeDialer('c'), fakeDialer('d')];
    const race2 = raceDialers([c.dialer, d.dialer], 15_000, { clock, fallbackMs: 3_000 });
    c.calls[0]!.fail(markUnreachable(new FerryError('FERRY_TIMEOUT', 'no answer')));
    await flush();
    d.calls[0]!.fail(markUnreachable(new FerryError('FERRY_TIMEOUT', 'no answer')));
    const err2 = await race2.then(() => null, (e: unknown) => e as FerryError);
    assert.equal(err2?.code, 'FERRY_TIMEOUT', 'a code all share is kept');
    assert.equal(isUnreachable(err2), true);
  });

  test('one endpoint: its own error, unchanged', async () => {
    const a = fakeDialer('a');
    const race = raceDialers([a.dialer], 1_000, { clock: new FakeClock(), fallbackMs: 3_000 });
    const own = new FerryError('FERRY_TLS_PIN_MISMATCH', 'pin');
    a.calls[0]!.fail(own);
    await assert.rejects(race, (e) => e === own);
  });
});

describe('endpoint list dialer', () => {
  test('sticks to the endpoint that worked, tells when it changes, and labels itself with the one in use', async () => {
    const clock = new FakeClock();
    const [tcp, wss] = [fakeDialer('relay.test:2222'), fakeDialer('wss://relay.test/v1/agent')];
    const saved: string[] = [];
    const list = endpointListDialer([{ key: 'relay.test:2222', dialer: tcp.dialer }, { key: 'wss://relay.test/v1/agent', dialer: wss.dialer }],
      { clock, fallbackMs: 3_000, onGood: (k) => saved.push(k) });
    assert.equal(list.label, 'relay.test:2222, wss://relay.test/v1/agent');
    const first = list.dial(15_000);
    clock.advance(3_000);
    wss.calls[0]!.succeed();
    await first;
    assert.equal(list.lastGood, undefined, 'not before the SSH login on it worked');
    list.outcome(true);
    assert.equal(list.lastGood, 'wss://relay.test/v1/agent');
    assert.equal(list.label, 'wss://relay.test/v1/agent');
    assert.deepEqual(saved, ['wss://relay.test/v1/agent']);
    tcp.calls[0]!.fail(new Error('dropped'));

    // Next time wss goes first: no wait on the dead TCP endpoint.
    const second = list.dial(15_000);
    assert.equal(wss.calls.length, 2);
    assert.equal(tcp.calls.length, 1);
    wss.calls[1]!.succeed();
    await second;
    list.outcome(true);
    assert.deepEqual(saved, ['wss://relay.test/v1/agent'], 'no change, nothing to save');
    assert.equal(clock.pending, 0);
  });

  test('an endpoint whose stream came up but whose SSH failed goes last next time, and is not remembered', async () => {
    const clock = new FakeClock();
    const [tcp, wss] = [fakeDialer('relay.test:2222'), fakeDialer('wss://relay.test/v1/agent')];
    const saved: string[] = [];
    const list = endpointListDialer([{ key: 'relay.test:2222', dialer: tcp.dialer }, { key: 'wss://relay.test/v1/agent', dialer: wss.dialer }],
      { clock, fallbackMs: 3_000, onGood: (k) => saved.push(k) });
    // A firewall that completes the TCP handshake and then drops the SSH traffic.
    const first = list.dial(15_000);
    tcp.calls[0]!.succeed();
    await first;
    list.outcome(false);
    const second = list.dial(15_000);
    assert.deepEqual([wss.calls.length, tcp.calls.length], [1, 1], 'wss is tried first now');
    wss.calls[0]!.succeed();
    await second;
    list.outcome(true);
    assert.deepEqual([list.lastGood, saved], ['wss://relay.test/v1/agent', ['wss://relay.test/v1/agent']]);
    assert.equal(clock.pending, 0);
  });

  test('a lastGood from the state file is used when the list holds it', async () => {
    const [a, b] = [fakeDialer('a'), fakeDialer('b')];
    const list = endpointListDialer([{ key: 'a', dialer: a.dialer }, { key: 'b', dialer: b.dialer }], { clock: new FakeClock(), lastGood: 'b' });
    const p = list.dial(1_000);
    assert.equal(b.calls.length, 1);
    assert.equal(a.calls.length, 0);
    b.calls[0]!.succeed();
    await p;
    const other = endpointListDialer([{ key: 'a', dialer: a.dialer }], { clock: new FakeClock(), lastGood: 'gone' });
    assert.equal(other.lastGood, undefined);
  });
});

describe('endpoint entries', () => {
  const wss = { transport: 'wss', host: 'relay.test', port: 443, path: '/v1/agent' } as const;
  const settings = (o: Partial<ProxySettings>): ProxySettings => ({ flag: null, httpsProxy: null, noProxy: null, ...o });
  test('an HTTPS_PROXY this agent cannot use is told and skipped (the endpoint is dialled directly); a bad --proxy stops it', () => {
    const told: string[] = [];
    const entries = endpointEntries([wss], { tlsPin: null, keepaliveMs: 20_000, proxies: settings({ httpsProxy: 'socks5://u:secret@p:1080' }), onProxyProblem: (p) => told.push(p) });
    assert.deepEqual(entries.map((e) => e.key), ['wss://relay.test/v1/agent']);
    assert.equal(told.length, 1);
    assert.match(told[0]!, /HTTPS_PROXY.*dialling wss:\/\/relay\.test\/v1\/agent directly/);
    assert.doesNotMatch(told[0]!, /secret/);
    assert.throws(() => endpointEntries([wss], { tlsPin: null, keepaliveMs: 20_000, proxies: settings({ flag: 'socks5://p:1080' }), onProxyProblem: () => {} }),
      (err: Error & { code?: string }) => err.code === 'FERRY_CONFIG_INVALID' && /--proxy/.test(err.message));
  });
});
