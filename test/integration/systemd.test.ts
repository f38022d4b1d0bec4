// The systemd units shipped in packaging/systemd: `systemd-analyze verify` accepts them without
// a warning, and the relay's sandboxing stays tight (systemd's own exposure score). Needs
// systemd-analyze (Debian package systemd); no running systemd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, run, tempDir } from '../helpers/env.ts';
import { ROOT } from '../helpers/fixture.ts';

const UNITS = ['ferry-relay.service', 'ferry-agent.service'];
/** Where the units expect `npm install -g` to have put the ferry command. */
const INSTALLED = '/usr/local/bin/ferry';
/** The relay's overall exposure as `systemd-analyze security` scores it, times ten: 2.0 at most. */
const RELAY_EXPOSURE_MAX = 20;

/** Copies of the units whose ExecStart points at a stub, because verify checks that the command exists. */
function unitCopies(t: { after(fn: () => void): void }): string[] {
  const dir = tempDir(t);
  const stub = join(dir, 'ferry');
  writeFileSync(stub, '#!/bin/sh\n');
  chmodSync(stub, 0o755);
  return UNITS.map((name) => {
    const text = readFileSync(join(ROOT, 'packaging/systemd', name), 'utf8');
    assert.ok(text.includes(`ExecStart=${INSTALLED} `), `${name} runs ${INSTALLED}`);
    const copy = join(dir, name);
    writeFileSync(copy, text.replaceAll(INSTALLED, stub));
    return copy;
  });
}

test('systemd-analyze verify accepts both units without a warning', { skip: missing('systemd-analyze', 'systemd') }, async (t) => {
  const r = await run('systemd-analyze', ['verify', ...unitCopies(t)]);
  // verify exits 0 for unknown keys too, and only warns: any output is a finding.
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, '');
});

test('the relay unit is sandboxed: exposure 2.0 or less on systemd\'s scale of 10', { skip: missing('systemd-analyze', 'systemd') }, async (t) => {
  const [relay] = unitCopies(t);
  const r = await run('systemd-analyze', ['security', '--offline=true', `--threshold=${RELAY_EXPOSURE_MAX}`, relay!]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const sysusers = readFileSync(join(ROOT, 'packaging/sysusers.d/ferry.conf'), 'utf8');
  const user = /^User=(\S+)$/m.exec(readFileSync(relay!, 'utf8'))![1];
  assert.match(sysusers, new RegExp(`^u ${user} `, 'm'), 'the relay\'s user comes from the shipped sysusers.d file');
});
