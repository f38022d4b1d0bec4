// Covers src/relay/enrollment.ts with a stand-in for ssh2's connection: a token is traded for a
// device and its audit row in one transaction, and a refusal is answered and audited.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, test } from 'node:test';
import type { Connection } from 'ssh2';
import { silentLogger } from '../../src/common/log.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { enrollCommand, type EnrollResponse } from '../../src/protocol/enrollment.ts';
import type { RelayContext } from '../../src/relay/context.ts';
import { serveEnrollment } from '../../src/relay/enrollment.ts';
import { openSqliteStore } from '../../src/relay/sqlite-store.ts';
import type { Store } from '../../src/relay/store.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const dir = mkdtempSync(join(tmpdir(), 'ferry-enrol-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let store: Store;
beforeEach(() => { store = openSqliteStore(join(dir, `store-${++n}.db`)); });
afterEach(() => store.close());

/** Makes a token in the store; returns its id and secret. */
function token(): { id: string; secret: string } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  store.createToken({ id, createdBy: 'admin', createdAt: NOW, expiresAt: NOW + 60_000, usesLeft: 1, name: null, labels: {}, approve: true }, createHash('sha256').update(secret).digest());
  return { id, secret };
}

/** Runs one enrollment exec through serveEnrollment against `s`; resolves with the answer. */
function enrol(s: Store, req: { id: string; secret: string }, name: string): EnrollResponse {
  const conn = new EventEmitter();
  const session = new EventEmitter();
  let out = '';
  serveEnrollment({ store: s, log: silentLogger(), clock: { now: () => NOW, setTimeout: () => ({ cancel() {} }) } } as unknown as RelayContext,
    conn as unknown as Connection, generateKeyPair('dev').publicKey, { address: '192.0.2.9' });
  conn.emit('session', () => session);
  const channel = { write: (d: string) => { out += d; }, exit: () => {}, end: () => {} };
  session.emit('exec', () => channel, () => {}, { command: enrollCommand({ tokenId: req.id, secret: req.secret, name, hostname: null, hostKey: null }) });
  return JSON.parse(out) as EnrollResponse;
}

test('enrolling writes the device and its audit row', () => {
  assert.deepEqual(enrol(store, token(), 'cam'), { ok: true, name: 'cam', status: 'approved' });
  assert.equal(store.getDevice('cam')?.status, 'approved');
  assert.deepEqual(store.listAudit({ limit: 10 }).map((a) => [a.action, a.target]), [['device.enroll', 'cam']]);
});

test('when the audit row cannot be written, no device is made and the token keeps its use', () => {
  const t = token();
  // The store, but the device.enroll row fails as a full disk would (the refusal's row is written).
  const failing = new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (prop === 'audit') return (e: { action: string }) => { if (e.action === 'device.enroll') throw new Error('disk I/O error'); target.audit(e as never); };
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const answer = enrol(failing, t, 'cam');
  assert.equal(answer.ok, false);
  assert.equal(store.getDevice('cam'), null);
  assert.equal(store.listTokens()[0]?.usesLeft, 1);
  assert.deepEqual(store.listAudit({ limit: 10 }).map((a) => a.action), ['device.enroll.refused']);
  assert.deepEqual(enrol(store, t, 'cam'), { ok: true, name: 'cam', status: 'approved' }, 'the token still works');
});
