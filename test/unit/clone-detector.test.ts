// Covers src/relay/clone-detector.ts: two machines with one device identity replacing each
// other are told from an agent that reconnects, and slowed down; all on made-up times.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CloneDetector, sameAgent, type LinkIdentity } from '../../src/relay/clone-detector.ts';

const LIMITS = { windowMs: 60_000, comebacks: 2, holdOffBaseMs: 10_000, holdOffMaxMs: 40_000 };
const A: LinkIdentity = { instance: 'aaaa', address: '10.0.0.1' };
const B: LinkIdentity = { instance: 'bbbb', address: '10.0.0.2' };

describe('sameAgent', () => {
  test('goes by the instance id when both links have one, else by address', () => {
    assert.equal(sameAgent(A, { instance: 'aaaa', address: '192.0.2.9' }), true, 'the same agent after moving to another network');
    assert.equal(sameAgent(A, { instance: 'cccc', address: '10.0.0.1' }), false, 'two agents behind one NAT address');
    assert.equal(sameAgent({ instance: null, address: '10.0.0.1' }, { instance: 'x', address: '10.0.0.1' }), true);
    assert.equal(sameAgent({ instance: null, address: '10.0.0.1' }, { instance: null, address: '10.0.0.2' }), false);
  });
});

describe('CloneDetector', () => {
  test('an agent that restarts, or reconnects from another address, is no clone', () => {
    const d = new CloneDetector(LIMITS);
    assert.equal(d.replaced('cam', A, { instance: 'aaaa', address: '192.0.2.9' }, 0), false);
    // Restarts: each new instance replaces the old one's ghost link once; none comes back.
    assert.equal(d.replaced('cam', A, B, 1_000), false);
    assert.equal(d.replaced('cam', B, { instance: 'cccc', address: '10.0.0.2' }, 2_000), false);
    assert.equal(d.episode('cam', 3_000), null);
    assert.deepEqual(d.mayReplace('cam', B, A, 3_000), { allow: true });
  });

  test('two identities taking the link back from each other start one episode, reported once', () => {
    const d = new CloneDetector(LIMITS);
    assert.equal(d.replaced('cam', A, B, 0), false);
    assert.equal(d.replaced('cam', B, A, 1_000), false, 'one comeback may be a roaming device');
    assert.equal(d.replaced('cam', A, B, 2_000), true, 'the second comeback starts the episode');
    assert.deepEqual(d.episode('cam', 2_000), { since: 2_000, addresses: ['10.0.0.1', '10.0.0.2'], replaces: 0 });
    assert.equal(d.episode('other', 2_000), null, 'per device');
  });

  test('during an episode the other machine is held off for a doubling time, up to the ceiling', () => {
    const d = new CloneDetector(LIMITS);
    d.replaced('cam', A, B, 0);
    d.replaced('cam', B, A, 1_000);
    d.replaced('cam', A, B, 2_000); // B holds the link; the episode starts.
    assert.deepEqual(d.mayReplace('cam', B, A, 3_000), { allow: false, retryInMs: 9_000 });
    assert.deepEqual(d.mayReplace('cam', B, { instance: 'bbbb', address: '10.9.9.9' }, 3_000), { allow: true }, 'B itself reconnects freely');
    assert.deepEqual(d.mayReplace('cam', B, A, 12_000), { allow: true });
    assert.equal(d.replaced('cam', B, A, 12_000), false, 'not reported again');
    assert.deepEqual(d.mayReplace('cam', A, B, 31_000), { allow: false, retryInMs: 1_000 }, '20 s now');
    d.replaced('cam', A, B, 32_000);
    assert.deepEqual(d.mayReplace('cam', B, A, 33_000), { allow: false, retryInMs: 39_000 }, '40 s');
    d.replaced('cam', B, A, 72_000);
    assert.deepEqual(d.mayReplace('cam', A, B, 73_000), { allow: false, retryInMs: 39_000 }, 'capped at 40 s');
    assert.equal(d.episode('cam', 73_000)!.replaces, 3);
  });

  test('an episode ends after a window with no contention, and a later flap starts a new one', () => {
    const d = new CloneDetector(LIMITS);
    d.replaced('cam', A, B, 0);
    d.replaced('cam', B, A, 1_000);
    d.replaced('cam', A, B, 2_000);
    // A keeps trying (and is refused): the episode lasts.
    assert.equal(d.mayReplace('cam', B, A, 50_000).allow, true, 'its hold-off is over');
    assert.notEqual(d.episode('cam', 100_000), null, 'contended at 50 s');
    assert.equal(d.episode('cam', 110_001), null, 'quiet for a window');
    assert.deepEqual(d.mayReplace('cam', B, A, 110_002), { allow: true });
    assert.equal(d.replaced('cam', B, A, 120_000), false, 'the old replaces are out of the window');
    assert.equal(d.replaced('cam', A, B, 121_000), false);
    assert.equal(d.replaced('cam', B, A, 122_000), true, 'a new episode');
  });

  test('replaces spread wider than the window never add up to an episode', () => {
    const d = new CloneDetector(LIMITS);
    d.replaced('cam', A, B, 0);
    d.replaced('cam', B, A, 61_000);
    assert.equal(d.replaced('cam', A, B, 122_000), false);
  });
});
