/**
 * Runs startThrowawaySshd as a process of its own, so that a test can start it inside a
 * network namespace (`ip netns exec NS node --import tsx THIS DIR AUTHORIZED_KEYS_FILE`).
 * Prints one JSON line {port, hostKeyLine, user} when sshd listens; stops it on SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import { startThrowawaySshd } from './throwaway-sshd.ts';

const [dir, keysFile] = process.argv.slice(2);
if (!dir || !keysFile) {
  process.stderr.write('usage: throwaway-sshd-launcher.ts DIR AUTHORIZED_KEYS_FILE\n');
  process.exit(2);
}
const keys = readFileSync(keysFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
const sshd = await startThrowawaySshd(dir, keys);
process.stdout.write(JSON.stringify({ port: sshd.port, hostKeyLine: sshd.hostKeyLine, user: sshd.user }) + '\n');
const stop = () => { void sshd.stop().then(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
