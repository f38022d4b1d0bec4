// `ferry demo` as the README runs it: it prints ssh commands, and they work as printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { run } from '../helpers/env.ts';
import { spawnFerry } from '../helpers/fixture.ts';

test('the demo prints an ssh command that reaches its device, and cleans up on Ctrl-C', { timeout: 60_000 }, async (t) => {
  const demo = spawnFerry(t, ['demo', '--ssh-listen', '127.0.0.1:0'], { FERRY_LOG_LEVEL: 'warn' });
  await demo.waitFor(/Try, in another terminal:[\s\S]*whoami\n/, 30_000);
  const dir = demo.stdout().match(/running in (\S+) /)![1]!;
  const lines = demo.stdout().split('\n').map((l) => l.trim());
  const first = lines.find((l) => l.startsWith('ssh -F') && l.includes('exit 3'))!;
  // Run the printed command line exactly as a user would paste it into a shell.
  const r = await run('bash', ['-c', first]);
  assert.match(r.stdout, /^hello from \S+\nexit code 3\n$/, r.stderr);
  const devices = await run('bash', ['-c', lines.find((l) => l.includes('ferry-relay devices'))!]);
  assert.match(devices.stdout, /\ndemo +approved +online/);
  const copy = await run('bash', ['-c', lines.find((l) => l.startsWith('scp -F'))!]);
  assert.equal(copy.code, 0, copy.stderr);
  const whoami = await run('bash', ['-c', lines.find((l) => l.endsWith('whoami'))!]);
  assert.equal(whoami.stdout.split(' ')[0], 'admin');
  assert.equal(await demo.stop('SIGINT'), 0);
  assert.equal(existsSync(dir), false, 'the demo removes its temp dir');
});
