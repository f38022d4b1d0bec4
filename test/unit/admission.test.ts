// Covers src/relay/admission.ts: lanes from the identification line, and handshake slots
// with a first-come first-served queue per lane.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HandshakeSlots, laneOf } from '../../src/relay/admission.ts';

describe('laneOf', () => {
  test('a ferry agent goes to the device lane, anything else to the interactive lane', () => {
    assert.equal(laneOf('SSH-2.0-ferry-agent_0.1.0\r'), 'device');
    assert.equal(laneOf('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r'), 'interactive');
    assert.equal(laneOf('SSH-2.0-ssh2js1.17.0'), 'interactive');
    assert.equal(laneOf('GET / HTTP/1.1'), 'interactive');
    assert.equal(laneOf('SSH-2.0-ferry-agent'), 'interactive', 'the version separator is part of the name');
  });
});

describe('HandshakeSlots', () => {
  test('runs up to the limit per lane, queues the rest, and hands freed slots on in arrival order', () => {
    const slots = new HandshakeSlots<string>({ device: 2, interactive: 1 });
    assert.equal(slots.request('d1', 'device'), true);
    assert.equal(slots.request('d2', 'device'), true);
    assert.equal(slots.request('d3', 'device'), false);
    assert.equal(slots.request('d4', 'device'), false);
    // The device lane being full does not touch the interactive lane.
    assert.equal(slots.request('op1', 'interactive'), true);
    assert.equal(slots.request('op2', 'interactive'), false);
    assert.deepEqual(slots.counts(), { device: { running: 2, waiting: 2 }, interactive: { running: 1, waiting: 1 } });

    assert.equal(slots.release('d2'), 'd3', 'the longest waiting device takes the slot');
    assert.equal(slots.release('op1'), 'op2');
    assert.equal(slots.release('d1'), 'd4');
    assert.equal(slots.release('d3'), null, 'nobody is waiting');
    assert.deepEqual(slots.counts(), { device: { running: 1, waiting: 0 }, interactive: { running: 1, waiting: 0 } });
  });

  test('a queued connection that leaves gives up its place without freeing a running slot', () => {
    const slots = new HandshakeSlots<string>({ device: 1, interactive: 1 });
    slots.request('a', 'device');
    slots.request('b', 'device');
    slots.request('c', 'device');
    assert.equal(slots.release('b'), null, 'b was only queued');
    assert.equal(slots.release('a'), 'c');
    assert.deepEqual(slots.counts().device, { running: 1, waiting: 0 });
  });

  test('releasing twice, or something never seen, changes nothing; asking twice keeps the first answer', () => {
    const slots = new HandshakeSlots<string>({ device: 1, interactive: 1 });
    assert.equal(slots.release('ghost'), null);
    assert.equal(slots.request('a', 'device'), true);
    assert.equal(slots.request('b', 'device'), false);
    assert.equal(slots.request('b', 'device'), false);
    assert.equal(slots.request('a', 'interactive'), true, 'a keeps its device slot');
    assert.equal(slots.release('a'), 'b');
    assert.equal(slots.release('a'), null);
    assert.deepEqual(slots.counts(), { device: { running: 1, waiting: 0 }, interactive: { running: 0, waiting: 0 } });
  });
});
