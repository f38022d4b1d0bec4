/**
 * One link: an authenticated relay connection on which the device registered its tunnel.
 * Inbound channels go to the SSH target. `openLink` is one attempt; link-loop.ts retries.
 */
import type { Client } from 'ssh2';
import { FerryError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { pipeBoth } from '../net/pipe.ts';
import { connectTcp } from '../net/tcp.ts';
import { DEVICE_SSH_PORT } from '../protocol/limits.ts';
import type { TcpTarget } from './config.ts';

/** A live link. `closed` resolves (never rejects) when it ends, with why. */
export interface OpenLink {
  readonly closed: Promise<string>;
  /** Says goodbye to the relay (so it records "agent closed") and ends the connection. */
  close(): Promise<void>;
}

/** How long the goodbye may take before the connection is simply ended. */
const GOODBYE_MS = 1_000;

/** Registers the tunnel for `name` on a ready client and serves channels until the link ends. */
export function openLink(client: Client, name: string, target: TcpTarget, targetConnectTimeoutMs: number, log: Logger): Promise<OpenLink> {
  let lastError = 'connection lost';
  client.on('error', (err: Error) => { lastError = err.message; });
  const closed = new Promise<string>((resolve) => client.once('close', () => resolve(lastError)));

  client.on('tcp connection', (info, accept, reject) => {
    connectTcp(target.host, target.port, targetConnectTimeoutMs).then((socket) => {
      const channel = accept();
      pipeBoth(channel, socket);
    }, (err: Error) => {
      log.warn({ target: `${target.host}:${target.port}`, from: info.srcIP, err: err.message }, 'cannot reach the SSH target');
      reject();
    });
  });

  return new Promise((resolve, reject) => {
    client.forwardIn(name, DEVICE_SSH_PORT, (err) => {
      if (err) {
        client.end();
        reject(new FerryError('FERRY_CONNECT_FAILED', `the relay did not accept the tunnel for '${name}': ${err.message}`));
        return;
      }
      resolve({
        closed,
        close: () => new Promise<void>((done) => {
          const timer = setTimeout(() => { client.end(); }, GOODBYE_MS);
          client.unforwardIn(name, DEVICE_SSH_PORT, () => {
            clearTimeout(timer);
            client.end();
          });
          void closed.then(() => { clearTimeout(timer); done(); });
        }),
      });
    });
  });
}
