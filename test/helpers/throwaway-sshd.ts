/**
 * A throwaway OpenSSH sshd on a loopback port, with its own host key and authorized keys:
 * the real sshd that tests and benchmarks of the `--ssh-target HOST:PORT` mode point at
 * (the product itself no longer starts one).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { FerryError } from '../../src/common/errors.ts';

/** Where Debian puts sshd. */
export const SSHD_PATH = '/usr/sbin/sshd';
/** How long sshd may take to say it is listening. */
const SSHD_START_TIMEOUT_MS = 10_000;

/** A running throwaway sshd. */
export interface ThrowawaySshd {
  port: number;
  /** `ssh-ed25519 AAAA…` of its host key, for known_hosts lines. */
  hostKeyLine: string;
  /** The user that may log in (the one running it). */
  user: string;
  stop(): Promise<void>;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts sshd in `dir` (which it fills with its key and config), accepting `authorizedKeys`. */
export async function startThrowawaySshd(dir: string, authorizedKeys: string[]): Promise<ThrowawaySshd> {
  if (!existsSync(SSHD_PATH)) {
    throw new FerryError('FERRY_CONFIG_INVALID', `${SSHD_PATH} is missing: install OpenSSH's server (apt-get install openssh-server)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, 'sshd_host_ed25519_key');
  if (!existsSync(hostKey)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-throwaway-sshd', '-f', hostKey]);
  const hostKeyLine = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(dir, 'authorized_keys'), authorizedKeys.join('\n') + '\n', { mode: 0o600 });
  // sshd refuses to start as root without its privilege separation directory.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'sshd_config'), [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, 'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no',
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp', 'LogLevel INFO', 'MaxStartups 100:30:200', 'MaxSessions 100', '',
    ].join('\n'));
    const child = spawn(SSHD_PATH, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = await waitForListening(child);
    if (ready === true) {
      child.stderr!.resume();
      return {
        port, hostKeyLine, user: userInfo().username,
        stop: () => new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
      };
    }
    if (attempt >= 3 || !/Address already in use/.test(ready)) {
      throw new FerryError('FERRY_CONNECT_FAILED', `sshd did not start: ${ready.trim().split('\n').slice(-3).join(' / ')}`);
    }
  }
}

function waitForListening(child: ChildProcess): Promise<true | string> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(`no answer within ${SSHD_START_TIMEOUT_MS} ms: ${text}`); }, SSHD_START_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      text += d.toString();
      if (/Server listening on/.test(text)) {
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve(true);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', () => { clearTimeout(timer); resolve(text || 'sshd exited'); });
  });
}
