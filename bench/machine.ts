/** What machine and which versions a run measured: for the header of each RESULTS.md section. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

/** Machine and versions, as label → value. */
export function machineInfo(): [string, string][] {
  const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const ssh2Version = (JSON.parse(readFileSync(join(ROOT, 'node_modules/ssh2/package.json'), 'utf8')) as { version: string }).version;
  let autossh = 'not installed';
  try { autossh = execFileSync('autossh', ['-V'], { encoding: 'utf8' }).trim(); } catch { /* absent */ }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) commit += ' with uncommitted changes in src/';
  } catch { /* not a git checkout */ }
  return [
    ['ferry', `commit ${commit}`],
    ['machine', `${nproc} cores (nproc), ${cpuModel}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Linux ${release()}`],
    ['node', process.version],
    ['OpenSSH', opensshVersion()],
    ['ssh2', ssh2Version],
    ['autossh', autossh],
  ];
}

/** `ssh -V` prints its version to stderr. */
function opensshVersion(): string {
  const r = execFileSync('sh', ['-c', 'ssh -V 2>&1'], { encoding: 'utf8' });
  return r.trim();
}
