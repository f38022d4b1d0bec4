// Covers src/relay/admission.ts: lanes from the identification line, and handshake slots
// with a first-come first-served queue per lane.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HandshakeSlots, laneOf, perAddressShare } from '../../src/relay/admission.ts';
import { agentInstanceOf } from '../../src/relay/front-door.ts';

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

describe('HandshakeSlots per source address', () => {
  test('one address holds at most its share of a lane; others still get slots, and its queued ones wait rather than go', () => {
    const slots = new HandshakeSlots<string>({ device: 4, interactive: 4 }, { device: 2, interactive: 1 });
    assert.equal(slots.request('x1', 'interactive', '10.0.0.2'), true);
    assert.equal(slots.request('x2', 'interactive', '10.0.0.2'), false, 'the address has its one interactive slot');
    assert.equal(slots.request('x3', 'interactive', '10.0.0.2'), false);
    assert.equal(slots.request('op', 'interactive', '10.0.0.1'), true, 'another address is not held up by the queued ones');
    assert.deepEqual(slots.counts().interactive, { running: 2, waiting: 2 });
    // A freed slot goes to the longest waiting connection whose address is under its share.
    assert.equal(slots.request('op2', 'interactive', '10.0.0.3'), true);
    assert.equal(slots.request('op3', 'interactive', '10.0.0.4'), true);
    assert.equal(slots.request('op4', 'interactive', '10.0.0.5'), false, 'the lane is full');
    assert.equal(slots.release('op'), 'op4', 'x2 waits longer but its address is at its share');
    assert.equal(slots.release('x1'), 'x2', 'its own address freed a slot');
    assert.equal(slots.release('op2'), null, 'x3 still waits: its address is at its share');
    assert.deepEqual(slots.counts().interactive, { running: 3, waiting: 1 });
    assert.equal(slots.release('x2'), 'x3');
  });

  test('the device lane has its own share, so a fleet behind one NAT address uses a good part of it', () => {
    const slots = new HandshakeSlots<string>({ device: 4, interactive: 4 }, { device: 3, interactive: 1 });
    assert.equal(slots.request('d1', 'device', 'nat'), true);
    assert.equal(slots.request('d2', 'device', 'nat'), true);
    assert.equal(slots.request('d3', 'device', 'nat'), true);
    assert.equal(slots.request('d4', 'device', 'nat'), false);
    assert.equal(slots.request('i1', 'interactive', 'nat'), true, 'lanes count an address separately');
    assert.equal(slots.request('e1', 'device', 'elsewhere'), true);
    assert.equal(slots.release('d1'), 'd4');
  });
});

describe('perAddressShare', () => {
  test('a percentage of a lane, at least one slot', () => {
    assert.equal(perAddressShare(32, 25), 8);
    assert.equal(perAddressShare(256, 50), 128);
    assert.equal(perAddressShare(3, 10), 1);
    assert.equal(perAddressShare(10, 100), 10);
  });
});

describe('agentInstanceOf', () => {
  test('the instance id an agent sends after its version, or null for anything else', () => {
    assert.equal(agentInstanceOf('3f2a9c0d11e4b7a8'), '3f2a9c0d11e4b7a8');
    assert.equal(agentInstanceOf('3f2a9c0d11e4b7a8\r'), '3f2a9c0d11e4b7a8');
    assert.equal(agentInstanceOf(undefined), null);
    assert.equal(agentInstanceOf('short'), null);
    assert.equal(agentInstanceOf('two words here'), null);
  });
});
