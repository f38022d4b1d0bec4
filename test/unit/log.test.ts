// Covers src/common/log.ts: JSON or pretty chosen by --log-format and the terminal, and what each writes.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { chooseLogFormat, createLogger, type LogFormat } from '../../src/common/log.ts';

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  return { stream, text: () => text };
}

test('pretty for a person at a terminal, JSON for a pipe or a file, the flag over both', () => {
  assert.equal(chooseLogFormat(null, true), 'pretty');
  assert.equal(chooseLogFormat(null, false), 'json');
  assert.equal(chooseLogFormat('json', true), 'json');
  assert.equal(chooseLogFormat('pretty', false), 'pretty');
});

test('each format writes one line per entry, secrets redacted', () => {
  const lines: Record<LogFormat, string> = { json: '', pretty: '' };
  for (const format of ['json', 'pretty'] as const) {
    const out = capture();
    const log = createLogger('info', 'relay', { format, destination: out.stream, colorize: false });
    log.child({ device: 'box' }).info({ token: 'ferry1.secret', reason: 'test' }, 'device online');
    log.debug('below the level');
    lines[format] = out.text();
  }
  const entry = JSON.parse(lines.json) as Record<string, unknown>;
  assert.deepEqual({ ...entry, time: 0 }, { level: 30, time: 0, name: 'relay', device: 'box', token: '[redacted]', reason: 'test', msg: 'device online' });
  assert.match(lines.pretty, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(relay\): device online\n {4}device: "box"\n {4}token: "\[redacted\]"\n {4}reason: "test"\n$/);
});
