/**
 * Local login users for the built-in SSH server: who a login name is (from NSS, through
 * `getent`), and how to start a program as that user (through util-linux `setpriv`, which
 * also sets the supplementary groups that Node's spawn cannot).
 */
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import { FerryError } from '../../common/errors.ts';

/** A passwd entry. */
export interface LocalUser { name: string; uid: number; gid: number; home: string; shell: string }

/** Where setpriv lives on Debian and most distributions. */
export const SETPRIV = '/usr/bin/setpriv';
/** How long a passwd lookup may take (NSS may ask a directory server). */
const LOOKUP_TIMEOUT_MS = 5_000;
const LOGIN_NAME = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

/** Looks up a login name; null when there is no such user. */
export function lookupUser(name: string): Promise<LocalUser | null> {
  if (!LOGIN_NAME.test(name)) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    execFile('getent', ['passwd', name], { timeout: LOOKUP_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        // getent exits 2 for "no such key"; anything else is a broken lookup.
        if ((err as { code?: number }).code === 2) return resolve(null);
        return reject(new FerryError('FERRY_CONNECT_FAILED', `cannot look up user '${name}': ${err.message}`));
      }
      const f = stdout.trim().split(':');
      if (f.length < 7 || f[0] !== name) return resolve(null);
      resolve({ name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/', shell: f[6] || '/bin/sh' });
    });
  });
}

/** Who the agent itself runs as. */
export function agentUser(): { name: string; uid: number } {
  const u = userInfo();
  return { name: u.username, uid: u.uid };
}

/**
 * The argv that runs `command` as `user`: through setpriv when the agent is root and the
 * user is someone else, as is otherwise.
 */
export function asUser(user: LocalUser, command: string[], agentUid: number): string[] {
  if (agentUid !== 0 || user.uid === 0) return command;
  return [SETPRIV, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--inh-caps=-all', '--', ...command];
}

/** Environment variables a client may set with `env` requests (OpenSSH's AcceptEnv LANG LC_*, plus a few harmless ones). */
export function envAllowed(name: string): boolean {
  return name === 'LANG' || name === 'LANGUAGE' || name.startsWith('LC_') || name === 'TZ' || name === 'COLORTERM' || name === 'TERM_PROGRAM';
}

/** The login environment for `user`, as sshd builds it. */
export function loginEnvironment(user: LocalUser, extra: Record<string, string>): Record<string, string> {
  return {
    USER: user.name, LOGNAME: user.name, HOME: user.home, SHELL: user.shell,
    PATH: user.uid === 0 ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' : '/usr/local/bin:/usr/bin:/bin:/usr/games',
    ...extra,
  };
}
