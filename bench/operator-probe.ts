/**
 * An operator's view of reachability, the same for ferry and the baseline: an ssh2 client
 * logged in to the relay opens a direct-tcpip channel (to a device name on ferry, to the
 * `-R` port on sshd) and waits for the device service's first byte.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Client } from 'ssh2';
import { sleep, withTimeout } from './processes.ts';
import type { Key } from './ssh-config.ts';

/** How long one reachability try may wait for the first byte. */
const TRY_TIMEOUT_MS = 2_000;

/** Logs in as `user` with `key` to host:port, retrying until `timeoutMs` (the relay may still be starting). */
export async function connectOperator(port: number, user: string, key: Key, timeoutMs: number, host = '127.0.0.1'): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  const privateKey = readFileSync(key.path, 'utf8');
  for (;;) {
    const client = new ssh2.Client();
    // ssh2 may emit 'error' more than once: one listener for the client's whole life.
    let failed: (err: Error) => void = () => {};
    client.on('error', (err: Error) => failed(err));
    try {
      await withTimeout(new Promise<void>((resolve, reject) => {
        failed = reject;
        client.once('ready', () => resolve());
        // Host keys are pinned by the OpenSSH clients of the benchmark; this probe only measures.
        client.connect({ host, port, username: user, privateKey, readyTimeout: 5_000 });
      }), 6_000, 'operator login');
      // From here on the relay going away shows as 'close'.
      failed = () => {};
      // ssh2 leaves Nagle on for sockets it opens itself; a probe must not wait for delayed ACKs.
      client.setNoDelay(true);
      return client;
    } catch (err) {
      client.end();
      if (Date.now() > deadline) throw new Error(`operator could not log in to ${host}:${port} within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
      await sleep(20);
    }
  }
}

/** One try: does a channel to host:port through `client` deliver the banner's first byte within `timeoutMs`? */
export function reachable(client: Client, host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, stream?: { destroy(): void }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream?.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    try {
      client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
        if (err) return finish(false);
        stream.once('data', () => finish(true, stream));
        stream.once('close', () => finish(false, stream));
        stream.on('error', () => finish(false, stream));
      });
    } catch {
      finish(false);
    }
  });
}

/**
 * Tries every target every `intervalMs`, without waiting for earlier tries (a try through a
 * frozen link would hang for its whole timeout), until each succeeds or `timeoutMs` passes;
 * returns for each the ms from `since` to its first success (null: never).
 */
export async function timeUntilReachable(client: Client, targets: { host: string; port: number }[], since: number, timeoutMs: number, intervalMs = 50): Promise<(number | null)[]> {
  const deadline = since + timeoutMs;
  return Promise.all(targets.map((t) => new Promise<number | null>((resolve) => {
    let done = false;
    const tries: Promise<void>[] = [];
    const finish = (v: number | null) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      // Let the tries still out finish, so that no channel is left half-opened behind us.
      void Promise.all(tries).then(() => resolve(v));
    };
    const once = () => {
      if (done) return;
      if (Date.now() > deadline) return finish(null);
      tries.push(reachable(client, t.host, t.port, TRY_TIMEOUT_MS).then((ok) => { if (ok) finish(Date.now() - since); }));
    };
    const timer = setInterval(once, intervalMs);
    once();
  })));
}
