// Covers src/agent/link-loop.ts: retries with growing delays, backoff reset, abort and callbacks, driven by a fake clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runLinkLoop, type LinkLoopOptions } from '../../src/agent/link-loop.ts';
import { FakeClock } from '../helpers/fake-clock.ts';


/** One call of `attempt`, which the test settles by hand. */
interface AttemptCall { succeed(): { close(reason: string): void }; fail(err: unknown): void }

type LoopEvent =
  | { type: 'attempt'; call: AttemptCall }
  | { type: 'up' }
  | { type: 'down'; reason: string; upForMs: number }
  | { type: 'failure'; err: unknown; attempt: number }
  | { type: 'wait'; delayMs: number };

/** Runs the loop and turns every call it makes into an event the test awaits in order. */
function harness(overrides: Partial<LinkLoopOptions> = {}) {
  const clock = new FakeClock();
  const controller = new AbortController();
  const queue: LoopEvent[] = [];
  let wake: (() => void) | null = null;
  const push = (e: LoopEvent) => { queue.push(e); wake?.(); wake = null; };
  let attempts = 0;
  const done = runLinkLoop({
    clock,
    signal: controller.signal,
    backoff: { baseMs: 100, maxMs: 1_000 },
    resetAfterMs: 5_000,
    random: () => 0.5,
    attempt: () => new Promise((resolve, reject) => {
      attempts++;
      push({
        type: 'attempt',
        call: {
          succeed() {
            let close!: (reason: string) => void;
            resolve({ closed: new Promise<string>((r) => { close = r; }) });
            return { close: (reason) => close(reason) };
          },
          fail: reject,
        },
      });
    }),
    onUp: () => push({ type: 'up' }),
    onDown: (reason, upForMs) => push({ type: 'down', reason, upForMs }),
    onFailure: (err, attempt) => push({ type: 'failure', err, attempt }),
    onWait: (delayMs) => push({ type: 'wait', delayMs }),
    ...overrides,
  });
  let finished = false;
  void done.then(() => { finished = true; });
  async function next<T extends LoopEvent['type']>(type: T): Promise<Extract<LoopEvent, { type: T }>> {
    while (queue.length === 0) await new Promise<void>((r) => { wake = r; });
    const e = queue.shift()!;
    assert.equal(e.type, type, `expected a '${type}' event, got ${JSON.stringify(e)}`);
    return e as Extract<LoopEvent, { type: T }>;
  }
  /** Lets pending promise reactions run; the loop needs a handful of microtask turns per step. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  }
  return { clock, controller, done, next, settle, queue, get attempts() { return attempts; }, get finished() { return finished; } };
}

describe('runLinkLoop', () => {
  test('retries failed attempts with growing, capped delays and reports each failure', async () => {
    const h = harness();
    const expected = [50, 100, 200, 400, 500, 500]; // random 0.5 of min(1000, 100·2^n)
    for (let n = 0; n < expected.length; n++) {
      const err = new Error(`refused ${n}`);
      (await h.next('attempt')).call.fail(err);
      const failure = await h.next('failure');
      assert.equal(failure.err, err);
      assert.equal(failure.attempt, n, 'the attempt number counts failures so far');
      const { delayMs } = await h.next('wait');
      assert.equal(delayMs, expected[n]);
      assert.equal(h.clock.pending, 1);
      h.clock.advance(delayMs - 1);
      await h.settle();
      assert.equal(h.attempts, n + 1, 'no new attempt before the delay is over');
      h.clock.advance(1);
    }
    await h.next('attempt');
    assert.equal(h.attempts, expected.length + 1);
    h.controller.abort();
    await h.settle();
    assert.equal(h.finished, false, 'an attempt in progress is not abandoned by the loop itself');
  });

  test('a link that stays up for resetAfterMs resets the backoff; a shorter one does not', async () => {
    const h = harness();
    // Two failures: the next delay would be for attempt 2.
    for (let n = 0; n < 2; n++) {
      (await h.next('attempt')).call.fail(new Error('down'));
      await h.next('failure');
      h.clock.advance((await h.next('wait')).delayMs);
    }
    // A link that drops just before resetAfterMs keeps counting.
    let link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(4_999);
    link.close('connection lost');
    assert.deepEqual(await h.next('down'), { type: 'down', reason: 'connection lost', upForMs: 4_999 });
    assert.equal((await h.next('wait')).delayMs, 200, 'attempt 2: 0.5 × 400');
    h.clock.advance(200);
    // One that stays up long enough resets the count.
    link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(5_000);
    link.close('keepalive timeout');
    assert.deepEqual(await h.next('down'), { type: 'down', reason: 'keepalive timeout', upForMs: 5_000 });
    assert.equal((await h.next('wait')).delayMs, 50, 'back to attempt 0: 0.5 × 100');
    h.clock.advance(50);
    // And the count grows again from there.
    (await h.next('attempt')).call.fail(new Error('x'));
    assert.equal((await h.next('failure')).attempt, 1);
    assert.equal((await h.next('wait')).delayMs, 100);
    h.controller.abort();
    await h.done;
  });

  test('after a healthy link drops, retries stay within the fast window for fastRetry.forMs, then back off from the start', async () => {
    const h = harness({ fastRetry: { forMs: 2_000, maxMs: 300, keepsFast: (err) => (err as Error).message === 'refused' } });
    // A first connection that fails backs off as usual: the fast phase needs a healthy link first.
    (await h.next('attempt')).call.fail(new Error('relay not there yet'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 50);
    h.clock.advance(50);
    const link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(5_000);
    link.close('connection lost');
    await h.next('down');
    // Within 2 s of the drop every wait is 0.5 × 300, and failures do not grow the backoff.
    let elapsed = 0;
    for (let n = 0; elapsed < 2_000; n++) {
      const { delayMs } = await h.next('wait');
      assert.equal(delayMs, 150, `fast wait ${n}`);
      h.clock.advance(delayMs);
      elapsed += delayMs;
      (await h.next('attempt')).call.fail(new Error('refused'));
      assert.equal((await h.next('failure')).attempt, 0, 'the fast phase does not count');
    }
    // Then the exponential backoff starts from its base: 0.5 × 100, 0.5 × 200.
    assert.equal((await h.next('wait')).delayMs, 50);
    h.clock.advance(50);
    (await h.next('attempt')).call.fail(new Error('refused'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 100);
    h.controller.abort();
    await h.done;
  });

  test('the fast phase ends at the first failure that keepsFast does not accept (a relay that is there but busy)', async () => {
    const h = harness({ fastRetry: { forMs: 10_000, maxMs: 300, keepsFast: (err) => (err as Error).message === 'refused' } });
    const link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(5_000);
    link.close('relay restarted');
    await h.next('down');
    assert.equal((await h.next('wait')).delayMs, 150, 'fast');
    h.clock.advance(150);
    (await h.next('attempt')).call.fail(new Error('refused'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 150, 'still fast: the relay is not there');
    h.clock.advance(150);
    (await h.next('attempt')).call.fail(new Error('shed by the relay'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 50, 'backing off from the base: 0.5 × 100');
    h.clock.advance(50);
    (await h.next('attempt')).call.fail(new Error('refused'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 100, 'and it stays in backoff: 0.5 × 200');
    h.controller.abort();
    await h.done;
  });

  test('abort during the wait ends the loop at once and cancels the timer', async () => {
    const h = harness({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    (await h.next('attempt')).call.fail(new Error('x'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 30_000);
    assert.equal(h.clock.pending, 1);
    h.controller.abort();
    await h.done; // without advancing the clock
    assert.equal(h.clock.pending, 0, 'the wait timer was cancelled');
    assert.equal(h.attempts, 1);
    h.clock.advance(120_000);
    await h.settle();
    assert.equal(h.attempts, 1, 'nothing runs after the loop ended');
  });

  test('abort while a link is up ends the loop when the link closes, without waiting or retrying', async () => {
    const h = harness();
    const link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.controller.abort();
    h.clock.advance(10);
    link.close('agent closed');
    assert.deepEqual(await h.next('down'), { type: 'down', reason: 'agent closed', upForMs: 10 });
    await h.done;
    assert.deepEqual(h.queue, [], 'no wait and no further attempt');
    assert.equal(h.attempts, 1);
    assert.equal(h.clock.pending, 0);
  });

  test('abort while an attempt fails ends the loop without a wait', async () => {
    const h = harness();
    const call = (await h.next('attempt')).call;
    h.controller.abort();
    call.fail(new Error('cancelled'));
    await h.next('failure');
    await h.done;
    assert.deepEqual(h.queue, []);
    assert.equal(h.clock.pending, 0);
  });

  test('an already aborted signal makes no attempt', async () => {
    const controller = new AbortController();
    controller.abort();
    let attempts = 0;
    await runLinkLoop({
      clock: new FakeClock(), signal: controller.signal, backoff: { baseMs: 1, maxMs: 1 }, resetAfterMs: 1,
      attempt: async () => { attempts++; return { closed: Promise.resolve('x') }; },
    });
    assert.equal(attempts, 0);
  });

  test('a link whose closed promise rejects counts as a failure, and the loop goes on', async () => {
    let calls = 0;
    const h = harness({
      attempt: () => {
        if (calls++ === 0) return Promise.resolve({ closed: Promise.reject(new Error('broken')) });
        return new Promise(() => {});
      },
    });
    await h.next('up');
    const f = await h.next('failure');
    assert.equal((f.err as Error).message, 'broken');
    h.clock.advance((await h.next('wait')).delayMs);
    await h.settle();
    assert.equal(calls, 2, 'it tried again');
  });

  test('works without any callbacks, and a throwing attempt never makes it reject', async () => {
    const controller = new AbortController();
    const clock = new FakeClock();
    let attempts = 0;
    const done = runLinkLoop({
      clock, signal: controller.signal, backoff: { baseMs: 10, maxMs: 10 }, resetAfterMs: 1, random: () => 0.99,
      attempt: async () => {
        if (++attempts === 3) controller.abort();
        throw new Error('no');
      },
    });
    for (let i = 1; i < 3; i++) {
      for (let j = 0; j < 50; j++) await Promise.resolve();
      assert.equal(attempts, i);
      assert.equal(clock.pending, 1, 'waiting between attempts');
      clock.advance(9);
    }
    await done;
    assert.equal(attempts, 3);
    assert.equal(clock.pending, 0);
  });

  test('after a refusal that cannot pass by itself (a revoked key), it waits the long interval, jittered, and comes back when let in', async () => {
    const refused = new Error('revoked');
    const h = harness({ longRetry: { when: (err) => err === refused, delayMs: 6 * 3_600_000 } });
    (await h.next('attempt')).call.fail(refused);
    await h.next('failure');
    // Jittered over the upper half of the interval, 0.5 of the way in: 4.5 h.
    const { delayMs } = await h.next('wait');
    assert.equal(delayMs, 4.5 * 3_600_000);
    h.clock.advance(delayMs - 1);
    await h.settle();
    assert.equal(h.attempts, 1, 'no attempt for hours');
    h.clock.advance(1);
    (await h.next('attempt')).call.fail(refused);
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 4.5 * 3_600_000, 'the interval does not shrink or grow');
    h.clock.advance(4.5 * 3_600_000);
    // An admin let the device in again: the link comes up at the next attempt.
    const link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(5_000);
    link.close('connection lost');
    await h.next('down');
    assert.equal((await h.next('wait')).delayMs, 50, 'an ordinary drop backs off from the base again');
    h.clock.advance(50);
    // Another kind of failure in between uses the usual backoff.
    (await h.next('attempt')).call.fail(new Error('connection refused'));
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 100);
    h.controller.abort();
    await h.done;
  });

  test('the long wait is jittered between half the interval and the whole of it', async () => {
    for (const [random, expected] of [[0, 3_000], [0.999, 5_997]] as const) {
      const refused = new Error('revoked');
      const h = harness({ random: () => random, longRetry: { when: (err) => err === refused, delayMs: 6_000 } });
      (await h.next('attempt')).call.fail(refused);
      await h.next('failure');
      assert.equal((await h.next('wait')).delayMs, expected);
      h.controller.abort();
      await h.done;
    }
  });

  test('a refusal ends the fast phase at once', async () => {
    const refused = new Error('revoked');
    const h = harness({ fastRetry: { forMs: 60_000, maxMs: 300, keepsFast: () => true }, longRetry: { when: (err) => err === refused, delayMs: 10_000 } });
    const link = (await h.next('attempt')).call.succeed();
    await h.next('up');
    h.clock.advance(5_000);
    link.close('revoked');
    await h.next('down');
    assert.equal((await h.next('wait')).delayMs, 150, 'fast after a healthy link');
    h.clock.advance(150);
    (await h.next('attempt')).call.fail(refused);
    await h.next('failure');
    assert.equal((await h.next('wait')).delayMs, 7_500, 'long, though the fast phase was on');
    h.controller.abort();
    await h.done;
  });
});
