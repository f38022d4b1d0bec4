/** Operator commands run on the relay host against its data dir: `ferry devices --data-dir DIR`. */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { FerryError } from '../common/errors.ts';
import { runCommand, USAGE } from '../relay/commands.ts';
import { openDataDir, relayInfoPath, storePath, type RelayInfo } from '../relay/relay.ts';

/** The commands that also run locally. */
export const LOCAL_COMMANDS = new Set(['login', 'devices', 'token', 'device', 'user', 'users', 'role', 'audit', 'recordings', 'recording', 'whoami', 'ssh-config']);

/** Runs one operator command locally, as the local principal (every action) named after the local user. */
export function localCommandMain(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  const words: string[] = [];
  let dataDir = env.FERRY_DATA_DIR ?? null;
  let publicAddress: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    const m = /^--(data-dir|public-address)(?:=(.*))?$/.exec(w);
    if (m) {
      const value = m[2] ?? argv[++i];
      if (value === undefined) throw new FerryError('FERRY_USAGE', `--${m[1]} needs a value`);
      if (m[1] === 'data-dir') dataDir = value; else publicAddress = value;
    } else {
      words.push(w);
    }
  }
  // Help needs no data dir: it is the same text wherever the command runs.
  if (words.includes('--help') || words.includes('-h')) {
    out.write(`${USAGE}\n`);
    return 0;
  }
  if (dataDir === null) throw new FerryError('FERRY_USAGE', `'ferry ${words[0]}' on the relay host needs --data-dir DIR (or FERRY_DATA_DIR); from elsewhere run it as 'ssh -p 2222 USER@RELAY ${words.join(' ')}'`);
  if (!existsSync(storePath(dataDir))) throw new FerryError('FERRY_CONFIG_INVALID', `${dataDir} holds no relay store: start 'ferry relay --data-dir ${dataDir}' once first`);
  let info: RelayInfo = { publicAddress: '', fingerprint: '', hostKeyLine: '', consoleUrl: null };
  try {
    info = JSON.parse(readFileSync(relayInfoPath(dataDir), 'utf8')) as RelayInfo;
  } catch {
    if (words[0] === 'token' || words[0] === 'ssh-config' || words[0] === 'login') throw new FerryError('FERRY_CONFIG_INVALID', `${relayInfoPath(dataDir)} is missing: start the relay once so that tokens know its address and host key`);
  }
  const store = openDataDir(dataDir);
  try {
    const result = runCommand({
      store,
      principal: { kind: 'local', user: `local:${userInfo().username}` },
      now: Date.now(),
      relay: {
        publicAddress: publicAddress ?? info.publicAddress, fingerprint: info.fingerprint, hostKeyLine: info.hostKeyLine, consoleUrl: info.consoleUrl ?? null,
        // --public-address here takes the public address's place in what tokens carry; the wss:// endpoints stay.
        agentEndpoints: [...(publicAddress === null ? [] : [publicAddress]), ...(info.agentEndpoints ?? [info.publicAddress]).filter((e) => publicAddress === null || e !== info.publicAddress)],
        tlsPin: info.tlsPin ?? null,
      },
      dataDir,
    }, words);
    out.write(result.stdout);
    // The whole audit log may not fit in memory: `audit export` writes each row as it reads it.
    for (const text of result.more ?? []) out.write(text);
    err.write(result.stderr);
    return result.code;
  } finally {
    store.close();
  }
}
