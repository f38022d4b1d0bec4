// Reaching a device's own sshd through the relay with the stock OpenSSH client: ssh -J,
// exit codes, scp both ways, sftp, rsync, and presence as `devices` reports it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { fileCleanup, missing } from '../helpers/env.ts';
import { relayCommand, ssh } from '../helpers/ssh-client.ts';
import { run } from '../helpers/env.ts';

let f: Fixture;
const suite = fileCleanup(after);

before(async () => {
  f = await startFixture(suite);
  await f.device('garage-cam');
});

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

test('ssh -J runs a command on the device and returns its exit code', async () => {
  const r = await ssh(f.admin, ['garage-cam', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
});

test('the explicit -J form works too', async () => {
  const r = await run('ssh', ['-F', f.admin.config, '-J', 'relay', 'garage-cam', 'true']);
  assert.equal(r.code, 0, r.stderr);
});

test('stdin reaches the device and binary output comes back intact', async () => {
  const data = randomBytes(256 * 1024);
  const r = await ssh(f.admin, ['garage-cam', 'sha256sum'], { input: data });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
});

test('scp -J copies 100 MiB to the device and back, byte for byte', { timeout: 180_000 }, async () => {
  const src = join(f.dir, 'big.bin');
  const chunk = randomBytes(1024 * 1024);
  const parts: Buffer[] = [];
  for (let i = 0; i < 100; i++) { chunk[0] = i; parts.push(Buffer.from(chunk)); }
  writeFileSync(src, Buffer.concat(parts));
  const remote = join(f.dir, 'on-device.bin');
  const back = join(f.dir, 'back.bin');
  const up = await run('scp', ['-F', f.admin.config, '-q', src, `garage-cam:${remote}`], { timeoutMs: 120_000 });
  assert.equal(up.code, 0, up.stderr);
  const down = await run('scp', ['-F', f.admin.config, '-q', `garage-cam:${remote}`, back], { timeoutMs: 120_000 });
  assert.equal(down.code, 0, down.stderr);
  const expected = await sha256File(src);
  assert.equal(await sha256File(remote), expected);
  assert.equal(await sha256File(back), expected);
});

test('sftp -J in batch mode puts, lists and gets a file', async () => {
  const local = join(f.dir, 'sftp-src.txt');
  writeFileSync(local, 'sftp through ferry\n');
  const remoteDir = join(f.dir, 'sftp-remote');
  mkdirSync(remoteDir);
  const batch = join(f.dir, 'batch');
  writeFileSync(batch, `put ${local} ${remoteDir}/a.txt\nls ${remoteDir}\nget ${remoteDir}/a.txt ${f.dir}/sftp-back.txt\n`);
  const r = await run('sftp', ['-F', f.admin.config, '-b', batch, 'garage-cam']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /a\.txt/);
  assert.equal(readFileSync(join(f.dir, 'sftp-back.txt'), 'utf8'), 'sftp through ferry\n');
});

test('rsync -e "ssh -F …" copies a directory tree', { skip: missing('rsync', 'rsync') }, async () => {
  const src = join(f.dir, 'tree');
  mkdirSync(join(src, 'sub/deeper'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'a');
  writeFileSync(join(src, 'sub/deeper/b.bin'), randomBytes(70_000));
  const dst = join(f.dir, 'tree-copy');
  const r = await run('rsync', ['-a', '-e', `ssh -F ${f.admin.config}`, `${src}/`, `garage-cam:${dst}/`]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readFileSync(join(dst, 'sub/deeper/b.bin')), readFileSync(join(src, 'sub/deeper/b.bin')));
});

test('devices reports presence: online, since, address, agent version', async () => {
  const r = await relayCommand(f.admin, ['devices', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const [d] = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.equal(d!.name, 'garage-cam');
  assert.equal(d!.status, 'approved');
  assert.equal(d!.online, true);
  assert.equal(d!.remoteAddress, '127.0.0.1');
  assert.match(String(d!.agentVersion), /^\d+\.\d+\.\d+$/);
  assert.ok(Date.parse(String(d!.connectedSince)) <= Date.now());
  assert.equal(d!.lastDisconnectReason, null);
});
