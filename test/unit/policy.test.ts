// Covers src/relay/policy.ts: mayReach and mayHoldLink (what a role allows is in access-policy.test.ts; relay actions are access-policy's mayAct) decisions and their messages.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Subject } from '../../src/relay/access-policy.ts';
import { mayHoldLink, mayReach } from '../../src/relay/policy.ts';
import type { DeviceRecord } from '../../src/relay/store.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const EVERYWHERE = { name: 'everywhere', devices: ['*'], logins: ['*'], forwards: [], actions: [] };
const alice: Subject = { user: 'alice', roles: [EVERYWHERE] };
/** Covers only devices labelled site=berlin, and may not list the others. */
const carol: Subject = { user: 'carol', roles: [{ ...EVERYWHERE, name: 'berlin', devices: ['site=berlin'] }] };
const RELAY = 'relay.example.com:2222';

function device(overrides: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    name: 'garage-cam', status: 'approved', keyFingerprint: 'SHA256:d', keyLine: 'ssh-ed25519 AAAA', labels: {},
    createdAt: NOW - 86_400_000, onlineSince: NOW - 1000, lastSeen: NOW, remoteAddress: '192.0.2.1', agentVersion: '0.1.0',
    lastDisconnectReason: null, hostKeyLine: null, ...overrides,
  };
}

describe('mayReach', () => {
  test('an approved, online device on port 22 is allowed', () => {
    assert.deepEqual(mayReach(alice, true, 'garage-cam', 22, device(), true, NOW, RELAY), { allow: true });
  });

  test('an unknown name is refused, pointing at the device list', () => {
    assert.deepEqual(mayReach(alice, true, 'nope', 22, null, false, NOW, RELAY), {
      allow: false, kind: 'prohibited', message: "no device named 'nope' is enrolled; 'devices' lists the names",
    });
  });

  test('addresses are refused as addresses: the relay is not an open proxy', () => {
    for (const host of ['127.0.0.1', '10.0.0.1', '::1', 'fe80::1', 'localhost', '8.8.8.8']) {
      const d = mayReach(alice, true, host, 22, null, false, NOW, RELAY);
      assert.equal(d.allow, false);
      assert.ok(!d.allow && d.kind === 'prohibited');
      assert.equal(!d.allow && d.message, `ferry connects only to device names, not to addresses like '${host}'; 'ssh -p 2222 alice@relay.example.com devices' lists them`);
    }
  });

  test("the hint names this relay's address and port, and the operator", () => {
    const bob: Subject = { ...alice, user: 'bob' };
    const message = (relay: string) => { const d = mayReach(bob, true, '10.0.0.1', 22, null, false, NOW, relay); return d.allow ? '' : d.message; };
    assert.match(message('ferry.example.net:22'), /; 'ssh bob@ferry\.example\.net devices' lists them$/);
    assert.match(message('[2001:db8::7]:443'), /; 'ssh -p 443 bob@2001:db8::7 devices' lists them$/);
  });

  test('a pending device is refused with how to approve it', () => {
    assert.deepEqual(mayReach(alice, true, 'garage-cam', 22, device({ status: 'pending' }), true, NOW, RELAY), {
      allow: false, kind: 'prohibited', message: "device 'garage-cam' is waiting for approval: an admin runs 'device approve garage-cam'",
    });
  });

  test('a revoked device is refused even while a link is up', () => {
    assert.deepEqual(mayReach(alice, true, 'garage-cam', 22, device({ status: 'revoked' }), true, NOW, RELAY), {
      allow: false, kind: 'prohibited', message: "device 'garage-cam' is revoked",
    });
  });

  test('only port 22 is reachable', () => {
    for (const port of [0, 21, 23, 80, 2222, 65535]) {
      const d = mayReach(alice, true, 'garage-cam', port, device(), true, NOW, RELAY);
      assert.ok(!d.allow, `port ${port}`);
      assert.equal(d.kind, 'prohibited');
      assert.match(d.message, new RegExp(`^only port 22 \\(the device's SSH target\\) is reachable through the relay, not ${port}; use 'ssh -L'`));
    }
  });

  test('an offline device is unavailable, saying when it was last seen and why it left', () => {
    const cases: [Partial<DeviceRecord>, string][] = [
      [{ lastSeen: null }, 'never connected'],
      [{ lastSeen: NOW - 5_000 }, 'last seen 5s ago'],
      [{ lastSeen: NOW - 119_000 }, 'last seen 119s ago'],
      [{ lastSeen: NOW - 120_000, lastDisconnectReason: 'keepalive timeout' }, 'last seen 2m ago, keepalive timeout'],
      [{ lastSeen: NOW - 3 * 3_600_000, lastDisconnectReason: 'agent closed' }, 'last seen 3h ago, agent closed'],
      [{ lastSeen: NOW - 5 * 86_400_000 }, 'last seen 5d ago'],
      [{ lastSeen: NOW + 10_000 }, 'last seen 0s ago'],
    ];
    for (const [overrides, seen] of cases) {
      assert.deepEqual(mayReach(alice, true, 'garage-cam', 22, device({ onlineSince: null, ...overrides }), false, NOW, RELAY), {
        allow: false, kind: 'unavailable', message: `device 'garage-cam' is offline (${seen})`,
      });
    }
  });

  test('to someone who may not list every device, one outside their roles looks like none at all', () => {
    const hidden = "'carol' may reach no device named 'garage-cam' (roles berlin: devices site=berlin); 'devices' lists the ones you may reach";
    // Whatever the device's state, and whether or not it exists, carol is told the same.
    for (const d of [null, device(), device({ status: 'pending' }), device({ status: 'revoked' }), device({ onlineSince: null, labels: { site: 'paris' } })]) {
      assert.deepEqual(mayReach(carol, false, 'garage-cam', 22, d, d !== null, NOW, RELAY), { allow: false, kind: 'prohibited', message: hidden });
    }
    // One who may list every device is told what is there.
    const full = mayReach(carol, true, 'garage-cam', 22, device({ labels: { site: 'paris' } }), true, NOW, RELAY);
    assert.ok(!full.allow && /'carol' may not reach device 'garage-cam' \(labels site=paris\): no role covers it/.test(full.message));
    // A device inside her roles gets the usual answers.
    assert.deepEqual(mayReach(carol, false, 'garage-cam', 22, device({ labels: { site: 'berlin' } }), true, NOW, RELAY), { allow: true });
    const pending = mayReach(carol, false, 'garage-cam', 22, device({ labels: { site: 'berlin' }, status: 'pending' }), true, NOW, RELAY);
    assert.ok(!pending.allow && /waiting for approval/.test(pending.message));
  });

  test('status is checked before port, and port before presence', () => {
    const d1 = mayReach(alice, true, 'garage-cam', 80, device({ status: 'pending' }), false, NOW, RELAY);
    assert.ok(!d1.allow && /waiting for approval/.test(d1.message));
    const d2 = mayReach(alice, true, 'garage-cam', 80, device(), false, NOW, RELAY);
    assert.ok(!d2.allow && /only port 22/.test(d2.message));
  });
});

describe('mayHoldLink', () => {
  test('approved and pending devices may hold a link', () => {
    assert.deepEqual(mayHoldLink(device()), { allow: true });
    assert.deepEqual(mayHoldLink(device({ status: 'pending' })), { allow: true });
  });

  test('revoked and unknown keys may not', () => {
    assert.deepEqual(mayHoldLink(device({ status: 'revoked' })), { allow: false, kind: 'prohibited', message: "device 'garage-cam' is revoked" });
    assert.deepEqual(mayHoldLink(null), { allow: false, kind: 'prohibited', message: 'this agent key is not enrolled: enrol again with a new token' });
  });
});
