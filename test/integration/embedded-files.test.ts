// File transfer through the agent's built-in SSH server with the real OpenSSH and rsync
// clients through the relay: scp in SFTP mode (OpenSSH 9's default) and legacy `scp -O`,
// 64 MiB both ways with identical SHA-256; `sftp -b` batch with ls, put, get, mkdir,
// rmdir, rename, rm, chmod, symlink and stat-like checks; `rsync -a` of a tree with
// symlinks and modes, then a delta transfer. The agent runs in this process, so sessions
// run as the user running the tests (root in CI); SFTP with another user's rights is in
// embedded-users.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileCleanup, missing, run, tempDir } from '../helpers/env.ts';
import { noSftpServer, sha256File, startEmbedded, writeRandomFile, type EmbeddedFixture } from '../helpers/embedded.ts';

const DEV = 'files-dev';
const suite = fileCleanup(after);
let e: EmbeddedFixture;
/** Local side (the operator's files) and remote side (the device's files: the same machine here). */
let local: string;
let remote: string;
let big: string;
let bigSum: string;

before(async () => {
  e = await startEmbedded(suite, { [DEV]: null });
  local = tempDir(suite, 'ferry-files-local-');
  remote = tempDir(suite, 'ferry-files-remote-');
  big = join(local, 'big-64MiB.bin');
  writeRandomFile(big, 64);
  bigSum = await sha256File(big);
});

const scp = (args: string[], timeoutMs = 180_000) => run('scp', ['-F', e.admin.config, '-q', ...args], { timeoutMs });
const sftp = (batch: string, timeoutMs = 60_000) => run('sftp', ['-F', e.admin.config, '-b', batch, DEV], { timeoutMs });

for (const legacy of [false, true]) {
  const mode = legacy ? 'scp -O (legacy scp protocol, the device runs scp -t/-f)' : 'scp (SFTP mode, the default since OpenSSH 9)';
  test(`${mode}: 64 MiB to the device and back, identical SHA-256`, { skip: legacy ? missing('scp', 'openssh-client') : noSftpServer(), timeout: 360_000 }, async () => {
    const tag = legacy ? 'legacy' : 'sftp';
    const there = join(remote, `big-${tag}.bin`);
    const back = join(local, `big-${tag}-back.bin`);
    const up = await scp([...(legacy ? ['-O'] : []), big, `${DEV}:${there}`]);
    assert.equal(up.code, 0, `upload: ${up.stderr}`);
    assert.equal(await sha256File(there), bigSum, 'the upload arrived byte for byte');
    const down = await scp([...(legacy ? ['-O'] : []), `${DEV}:${there}`, back]);
    assert.equal(down.code, 0, `download: ${down.stderr}`);
    assert.equal(lstatSync(back).size, 64 * 1024 * 1024);
    assert.equal(await sha256File(back), bigSum, 'the download arrived byte for byte');
  });
}

test('scp -p keeps mode and times; scp -r copies a directory (both modes)', { skip: noSftpServer(), timeout: 60_000 }, async () => {
  const src = join(local, 'scp-tree');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'sub/x.sh'), '#!/bin/sh\necho x\n');
  chmodSync(join(src, 'sub/x.sh'), 0o750);
  utimesSync(join(src, 'sub/x.sh'), 1_600_000_000, 1_600_000_000);
  for (const legacy of [false, true]) {
    const dst = join(remote, `scp-tree-${legacy ? 'legacy' : 'sftp'}`);
    const r = await scp([...(legacy ? ['-O'] : []), '-r', '-p', src, `${DEV}:${dst}`]);
    assert.equal(r.code, 0, r.stderr);
    const st = lstatSync(join(dst, 'sub/x.sh'));
    assert.equal(st.mode & 0o777, 0o750, `${legacy ? '-O' : 'sftp'}: mode kept`);
    assert.equal(Math.round(st.mtimeMs / 1000), 1_600_000_000, `${legacy ? '-O' : 'sftp'}: mtime kept`);
    assert.equal(readFileSync(join(dst, 'sub/x.sh'), 'utf8'), '#!/bin/sh\necho x\n');
  }
});

test('sftp -b: ls, put, get, mkdir, rmdir, rename, rm, chmod, symlink, readlink, stat — and it exits', { skip: noSftpServer(), timeout: 60_000 }, async () => {
  const box = join(remote, 'sftp-box');
  mkdirSync(box);
  writeFileSync(join(box, 'old.txt'), 'already there\n');
  writeFileSync(join(box, 'doomed.txt'), 'remove me\n');
  mkdirSync(join(box, 'doomed-dir'));
  const a = join(local, 'sftp-a.txt');
  writeFileSync(a, 'hello over sftp\n');
  utimesSync(a, 1_500_000_000, 1_500_000_000);
  const blob = join(local, 'sftp-blob.bin');
  writeFileSync(blob, randomBytes(300_000));
  const batch = join(local, 'sftp-batch');
  writeFileSync(batch, [
    `cd ${box}`,
    'ls -1',
    `put -p ${a} a.txt`,
    `put ${blob} blob.bin`,
    'mkdir newdir',
    'rename a.txt newdir/b.txt',
    'chmod 640 newdir/b.txt',
    'symlink newdir/b.txt link-to-b',
    'rm doomed.txt',
    'rmdir doomed-dir',
    'ls -l',
    'ls -l newdir',
    `get link-to-b ${join(local, 'via-link.txt')}`,
    `get -p newdir/b.txt ${join(local, 'b-back.txt')}`,
    `get blob.bin ${join(local, 'blob-back.bin')}`,
    'pwd',
    '',
  ].join('\n'));
  const r = await sftp(batch);
  // The pitfall this catches: a server that leaves the channel open after EOF makes sftp -b hang.
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^old\.txt$/m, 'ls -1 lists what was there');
  // ls -l: the symlink shows as one, the chmod shows in the listing (a stat from the server).
  assert.match(r.stdout, /^lrwxrwxrwx .* link-to-b$/m);
  assert.match(r.stdout, /^drwx.* newdir$/m);
  assert.match(r.stdout, /^-rw-r----- .* newdir\/b\.txt$/m);
  assert.match(r.stdout, new RegExp(`Remote working directory: ${box}$`, 'm'));
  // The device's side, seen directly.
  assert.equal(readFileSync(join(box, 'newdir/b.txt'), 'utf8'), 'hello over sftp\n');
  assert.equal(existsSync(join(box, 'a.txt')), false, 'rename moved it');
  assert.equal(lstatSync(join(box, 'newdir/b.txt')).mode & 0o777, 0o640, 'chmod');
  assert.equal(Math.round(lstatSync(join(box, 'newdir/b.txt')).mtimeMs / 1000), 1_500_000_000, 'put -p kept the mtime');
  assert.ok(lstatSync(join(box, 'link-to-b')).isSymbolicLink());
  assert.equal(readlinkSync(join(box, 'link-to-b')), 'newdir/b.txt', 'symlink target as given');
  assert.equal(existsSync(join(box, 'doomed.txt')), false, 'rm');
  assert.equal(existsSync(join(box, 'doomed-dir')), false, 'rmdir');
  assert.deepEqual(readFileSync(join(box, 'blob.bin')), readFileSync(blob));
  // The operator's side.
  assert.equal(readFileSync(join(local, 'via-link.txt'), 'utf8'), 'hello over sftp\n', 'get through the symlink');
  assert.equal(lstatSync(join(local, 'b-back.txt')).mode & 0o777, 0o640, 'get -p kept the mode');
  assert.deepEqual(readFileSync(join(local, 'blob-back.bin')), readFileSync(blob));
});

test('sftp -b stops at the first failing command and exits non-zero (rmdir of a non-empty directory)', { skip: noSftpServer() }, async () => {
  const box = join(remote, 'sftp-fail');
  mkdirSync(join(box, 'full'), { recursive: true });
  writeFileSync(join(box, 'full/f'), 'x');
  const batch = join(local, 'sftp-fail-batch');
  writeFileSync(batch, `cd ${box}\nrmdir full\nmkdir never\n`);
  const r = await sftp(batch);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Couldn't remove directory|Failure/);
  assert.equal(existsSync(join(box, 'never')), false, 'the batch stopped');
});

/** Every entry under `dir`: type, mode, and content or link target. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const key = relative(dir, p);
      if (st.isSymbolicLink()) out[key] = `link -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) { out[key] = `dir ${(st.mode & 0o7777).toString(8)}`; walk(p); }
      else out[key] = `file ${(st.mode & 0o7777).toString(8)} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(dir);
  return out;
}

test('rsync -a copies a tree with symlinks and modes, and the second run sends only the change', { skip: missing('rsync', 'rsync'), timeout: 120_000 }, async () => {
  const src = join(local, 'rsync-src');
  mkdirSync(join(src, 'bin'), { recursive: true });
  mkdirSync(join(src, 'private'), { mode: 0o700 });
  chmodSync(join(src, 'private'), 0o700);
  writeFileSync(join(src, 'a.txt'), 'alpha\n');
  chmodSync(join(src, 'a.txt'), 0o644);
  writeFileSync(join(src, 'bin/run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(src, 'bin/run.sh'), 0o755);
  writeFileSync(join(src, 'private/secret'), 'shh\n');
  chmodSync(join(src, 'private/secret'), 0o600);
  writeFileSync(join(src, 'big.bin'), randomBytes(4 * 1024 * 1024));
  symlinkSync('a.txt', join(src, 'link-to-a'));
  symlinkSync('bin/run.sh', join(src, 'link-to-run'));
  symlinkSync('does/not/exist', join(src, 'dangling'));
  const dst = join(remote, 'rsync-dst');
  const rsync = (extra: string[], from: string, to: string) => run('rsync', ['-a', ...extra, '-e', `ssh -F ${e.admin.config}`, from, to], { timeoutMs: 90_000 });

  const first = await rsync([], `${src}/`, `${DEV}:${dst}/`);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(treeOf(dst), treeOf(src));

  // A change in the middle of the big file, a new file, a new mode: rsync's delta algorithm
  // sends the changed block only (it is on by default when the other side is remote).
  const bigPath = join(src, 'big.bin');
  const content = readFileSync(bigPath);
  randomBytes(100).copy(content, 2 * 1024 * 1024);
  writeFileSync(bigPath, content);
  // Same size, and possibly the same second as the first copy: rsync's quick check (size and
  // mtime) would skip the file. A later mtime makes the change visible, as it would be.
  const later = new Date(Date.now() + 60_000);
  utimesSync(bigPath, later, later);
  writeFileSync(join(src, 'new.txt'), 'new\n');
  chmodSync(join(src, 'a.txt'), 0o600);
  const second = await rsync(['--stats'], `${src}/`, `${DEV}:${dst}/`);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(treeOf(dst), treeOf(src));
  const literal = Number(/Literal data: ([\d,]+) bytes/.exec(second.stdout)?.[1]?.replace(/,/g, ''));
  const matched = Number(/Matched data: ([\d,]+) bytes/.exec(second.stdout)?.[1]?.replace(/,/g, ''));
  assert.ok(matched > 3 * 1024 * 1024, `most of big.bin matched (${matched} bytes):\n${second.stdout}`);
  assert.ok(literal < 256 * 1024, `only the change was sent (${literal} literal bytes)`);

  // And back from the device.
  const back = join(local, 'rsync-back');
  const pull = await rsync([], `${DEV}:${dst}/`, `${back}/`);
  assert.equal(pull.code, 0, pull.stderr);
  assert.deepEqual(treeOf(back), treeOf(src));
});
