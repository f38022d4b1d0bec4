// Covers src/relay/device-reports.ts: lines split across chunks, over-long lines dropped with a bound, and the audit row a report becomes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_REPORT_LINE, encodeDeviceReport } from '../../src/protocol/device-report.ts';
import { ReportLines, parseReports, reportAuditEntry } from '../../src/relay/device-reports.ts';

test('lines come out whole whatever the chunks, a split UTF-8 character included', () => {
  const r = new ReportLines();
  const bytes = Buffer.from('{"a":"é"}\n{"b":2}\n{"c"');
  const cut = bytes.indexOf(0xa9); // the second byte of é
  assert.deepEqual(r.push(bytes.subarray(0, cut)), []);
  assert.deepEqual(r.push(bytes.subarray(cut)), ['{"a":"é"}', '{"b":2}']);
  assert.deepEqual(r.push(':3}\n\n'), ['{"c":3}']);
});

test('an over-long line is dropped without holding it, and the next line is read', () => {
  const r = new ReportLines();
  const chunk = 'x'.repeat(4096);
  for (let i = 0; i < (2 * MAX_REPORT_LINE) / chunk.length; i++) assert.deepEqual(r.push(chunk), []);
  assert.deepEqual(r.push('tail of the long one\nnext\n'), ['next']);
  assert.equal(r.tooLong, 1);
  assert.deepEqual(r.push('y'.repeat(MAX_REPORT_LINE + 1) + '\nok\n'), ['ok']);
  assert.equal(r.tooLong, 2);
});

test('a report becomes ssh.EVENT by the reported operator on the device, marked as the device\'s word', () => {
  const line = encodeDeviceReport({ event: 'session.end', at: 5, operator: 'alice', login: 'pi', detail: { session: 's1', exit: 3, durationMs: 40 } }).trim();
  const { reports, bad } = parseReports([line, 'not json', '{"event":"nope","at":1,"operator":null,"login":null,"detail":{}}']);
  assert.equal(bad, 2);
  assert.deepEqual(reportAuditEntry('cam', reports[0]!, 99), {
    at: 99, actor: 'alice', action: 'ssh.session.end', target: 'cam', source: 'device',
    detail: { session: 's1', exit: 3, durationMs: 40, login: 'pi', reportedAt: 5 },
  });
  const anonymous = parseReports([encodeDeviceReport({ event: 'login.refused', at: 1, operator: null, login: 'root', detail: { why: 'unknown key' } })]).reports[0]!;
  assert.equal(reportAuditEntry('cam', anonymous, 2).actor, 'cam', 'no operator: the device is the actor');
});
