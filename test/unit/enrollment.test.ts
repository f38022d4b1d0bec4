// Covers src/protocol/enrollment.ts: the enroll exec command line and its parser.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ENROLL_COMMAND, enrollCommand, parseEnrollCommand, type EnrollRequest } from '../../src/protocol/enrollment.ts';

describe('enrollment command', () => {
  test('round trip, with and without optional names', () => {
    const requests: EnrollRequest[] = [
      { tokenId: 'abcdef0123456789', secret: 's3cret-with "quotes" and \\ backslash', name: 'garage-cam', hostname: 'pi', hostKey: 'ssh-ed25519 AAAA' },
      { tokenId: 'abcdef0123456789', secret: 'x', name: null, hostname: null, hostKey: null },
    ];
    for (const req of requests) {
      const line = enrollCommand(req);
      assert.ok(line.startsWith(`${ENROLL_COMMAND} {`));
      assert.deepEqual(parseEnrollCommand(line), req);
    }
  });

  test('extra fields are dropped', () => {
    const parsed = parseEnrollCommand(`enroll {"tokenId":"t","secret":"s","name":null,"hostname":null,"evil":1}`);
    assert.deepEqual(parsed, { tokenId: 't', secret: 's', name: null, hostname: null, hostKey: null });
  });

  test('anything else is not an enrollment request', () => {
    const bad = [
      '', 'enroll', 'enroll ', 'enrol {}', 'ENROLL {"tokenId":"t","secret":"s","name":null,"hostname":null}',
      'enroll{"tokenId":"t","secret":"s","name":null,"hostname":null}',
      'enroll not json', 'enroll null', 'enroll 1', 'enroll []', 'enroll "x"',
      'enroll {"secret":"s","name":null,"hostname":null}',
      'enroll {"tokenId":"t","name":null,"hostname":null}',
      'enroll {"tokenId":1,"secret":"s","name":null,"hostname":null}',
      'enroll {"tokenId":"t","secret":"s","name":5,"hostname":null}',
      'enroll {"tokenId":"t","secret":"s","name":null,"hostname":false}',
      'enroll {"tokenId":"t","secret":"s","hostname":null}',
      'devices --json',
    ];
    for (const line of bad) assert.equal(parseEnrollCommand(line), null, line);
  });
});
