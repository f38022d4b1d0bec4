// Covers src/agent/state.ts: agent.json with an endpoint list, TLS pin and lastGood; an old file with only `relay` still read; `relay` still written for older agents.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFerryError } from '../../src/common/errors.ts';
import { readEnrollment, writeEnrollment, type Enrollment } from '../../src/agent/state.ts';

const root = mkdtempSync(join(tmpdir(), 'ferry-agent-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const dir = join(root, String(n++));
  mkdirSync(dir);
  return dir;
};
const dirWith = (content: unknown) => {
  const dir = newDir();
  writeFileSync(join(dir, 'agent.json'), JSON.stringify(content));
  return dir;
};
const FP = `SHA256:${'A'.repeat(43)}`;
const PIN = `sha256//${'B'.repeat(43)}=`;
const base = { fingerprint: FP, name: 'cam', sshTarget: 'embedded' };

describe('agent state', () => {
  test('endpoints, tlsPin and lastGood round-trip; relay is written too (the first HOST:PORT endpoint)', () => {
    const dir = newDir();
    const e: Enrollment = { endpoints: ['wss://relay.test/v1/agent', 'relay.test:2222'], tlsPin: PIN, lastGood: 'relay.test:2222', fingerprint: FP, name: 'cam', sshTarget: 'embedded' };
    writeEnrollment(dir, e);
    const raw = JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8')) as { relay: string };
    assert.equal(raw.relay, 'relay.test:2222');
    assert.deepEqual(readEnrollment(dir), e);
    const only = newDir();
    writeEnrollment(only, { ...e, endpoints: ['wss://relay.test/v1/agent'], lastGood: undefined });
    assert.equal((JSON.parse(readFileSync(join(only, 'agent.json'), 'utf8')) as { relay: string }).relay, 'wss://relay.test/v1/agent');
  });

  test('an old agent.json with only relay HOST:PORT reads as that one endpoint, no pin', () => {
    const e = readEnrollment(dirWith({ relay: 'relay.test:2222', ...base }));
    assert.deepEqual(e, { endpoints: ['relay.test:2222'], tlsPin: null, ...base });
  });

  test('bad endpoints, pins or lastGood are a damaged state in words', () => {
    for (const bad of [
      { endpoints: [], tlsPin: null, ...base },
      { endpoints: ['ws://relay.test/'], tlsPin: null, ...base },
      { endpoints: 'relay.test:2222', tlsPin: null, ...base },
      { endpoints: ['relay.test:2222'], tlsPin: 'sha1//x', ...base },
      { endpoints: ['relay.test:2222'], tlsPin: null, lastGood: 7, ...base },
      { relay: 'not an address', ...base },
      { ...base },
    ]) {
      assert.throws(() => readEnrollment(dirWith(bad)), (err: unknown) => isFerryError(err, 'FERRY_STATE_INVALID') && /enrol again/.test(err.message), JSON.stringify(bad));
    }
  });

  test('no file: not enrolled yet', () => {
    assert.equal(readEnrollment(newDir()), null);
  });
});
