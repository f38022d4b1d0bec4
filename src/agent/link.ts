/**
 * One link: an authenticated relay connection on which the device registered its tunnel.
 * Inbound channels go to the SSH target. `openLink` is one attempt; link-loop.ts retries.
 */
import type { Duplex } from 'node:stream';
import type { Client } from 'ssh2';
import { FerryError } from '../common/errors.ts';
import { parsePublicKey } from '../common/ssh-keys.ts';
import type { Logger } from '../common/log.ts';
import { AUTHORIZED_KEYS_COMMAND, MAX_AUTHORIZED_KEYS_LINE, parseAuthorizedKeys, type AuthorizedKey } from '../protocol/authorized-keys.ts';
import { DEVICE_SSH_PORT } from '../protocol/limits.ts';
import { OPEN_FAILURE, rejectWithMessage } from '../net/ssh2-internals.ts';
import type { ReportQueue } from './report-queue.ts';

/**
 * Where a channel from the relay goes. `open` resolves once the target is ready for the
 * channel (a TCP connection made, say) and then takes it; it rejects to refuse the channel.
 */
export interface ChannelTarget {
  open(origin: { address: string; port: number }): Promise<(channel: Duplex) => void>;
}

/** A live link. `closed` resolves (never rejects) when it ends, with why. */
export interface OpenLink {
  readonly closed: Promise<string>;
  /** Says goodbye to the relay (so it records "agent closed") and ends the connection. */
  close(): Promise<void>;
}

/** How long the goodbye may take before the connection is simply ended. */
const GOODBYE_MS = 1_000;
/** Longest notice line from the relay kept for the log. */
const MAX_NOTICE_BYTES = 4_096;
/** How long to wait for the relay's first list of operator keys before calling the link up anyway. */
const FIRST_KEYS_TIMEOUT_MS = 5_000;

/**
 * Registers the tunnel for `name` on a ready client and serves channels until the link ends.
 * `reports` (the built-in server's) go to the relay on the key-watch channel while it is open.
 */
export function openLink(client: Client, name: string, target: ChannelTarget, log: Logger, onAuthorizedKeys?: (keys: AuthorizedKey[]) => void, reports?: ReportQueue): Promise<OpenLink> {
  let lastError = 'connection lost';
  client.on('error', (err: Error) => { lastError = err.message; });
  const closed = new Promise<string>((resolve) => client.once('close', () => resolve(lastError)));

  client.on('tcp connection', (info, accept, reject) => {
    target.open({ address: info.srcIP, port: info.srcPort }).then((take) => take(accept()), (err: Error) => {
      log.warn({ from: info.srcIP, err: err.message }, 'cannot reach the SSH target');
      // The relay passes this text on to the operator.
      rejectWithMessage(client, reject, OPEN_FAILURE.connectFailed, err.message);
    });
  });

  return new Promise((resolve, reject) => {
    client.forwardIn(name, DEVICE_SSH_PORT, (err) => {
      if (err) {
        client.end();
        // The relay refuses a registration only while another machine with this identity holds it.
        reject(new FerryError('FERRY_CONNECT_FAILED', `the relay did not accept the tunnel for '${name}' (${err.message}): another machine is probably using this device's identity (a copied state dir); `
          + 're-enroll one of them with a new token (delete its state dir). Until then the relay lets them take turns'));
        return;
      }
      const link: OpenLink = {
        closed,
        close: () => new Promise<void>((done) => {
          lastError = 'stopped by the agent';
          const timer = setTimeout(() => { client.end(); }, GOODBYE_MS);
          client.unforwardIn(name, DEVICE_SSH_PORT, () => {
            clearTimeout(timer);
            client.end();
          });
          void closed.then(() => { clearTimeout(timer); done(); });
        }),
      };
      // With the built-in server, the link counts as up once it knows who may log in: a
      // login in the first milliseconds would otherwise be refused.
      // Without the built-in server the watch still carries the relay's notices (such as
      // another machine using this identity), but the link does not wait for keys.
      if (onAuthorizedKeys) watchAuthorizedKeys(client, onAuthorizedKeys, log, () => resolve(link), reports);
      else {
        watchAuthorizedKeys(client, null, log, () => {}, reports);
        resolve(link);
      }
    });
  });
}

/**
 * Keeps an exec open on which the relay sends this device's operator keys whenever they
 * change (to `onKeys`; null when the agent has no use for them), and notices on stderr;
 * the agent's `reports` go the other way on it, as JSON lines (device-report.ts).
 */
function watchAuthorizedKeys(client: Client, onKeys: ((keys: AuthorizedKey[]) => void) | null, log: Logger, onFirst: () => void, reports?: ReportQueue): void {
  let first = true;
  const firstDone = () => { if (first) { first = false; onFirst(); } };
  // A relay that never answers must not hold the link down.
  const timer = setTimeout(firstDone, FIRST_KEYS_TIMEOUT_MS);
  client.once('close', () => { clearTimeout(timer); firstDone(); });
  client.exec(AUTHORIZED_KEYS_COMMAND, (err, stream) => {
    if (err) {
      if (onKeys) log.warn({ err: err.message }, 'the relay sends no operator keys: the built-in SSH server will refuse every login');
      clearTimeout(timer);
      firstDone();
      return;
    }
    if (reports) {
      // A relay from before reports reads this channel's input and drops it; one that stops
      // reading holds the queue back through the channel's window, never memory.
      const writer = { writable: () => stream.writable, write: (line: string) => stream.write(line), onDrain: (fn: () => void) => { stream.on('drain', fn); } };
      reports.attach(writer);
      stream.once('close', () => reports.detach(writer));
    }
    let buffered = '';
    // The relay's notices for this agent (such as another machine using its identity).
    let notice = '';
    stream.stderr.on('data', (d: Buffer) => {
      notice = (notice + d.toString('utf8')).slice(-MAX_NOTICE_BYTES);
      let nl;
      while ((nl = notice.indexOf('\n')) >= 0) {
        log.warn({ notice: notice.slice(0, nl) }, `the relay says: ${notice.slice(0, nl)}`);
        notice = notice.slice(nl + 1);
      }
    });
    stream.on('data', (d: Buffer) => {
      buffered += d.toString('utf8');
      if (buffered.length > MAX_AUTHORIZED_KEYS_LINE) {
        log.error('operator key list from the relay is too long; closing the watch');
        stream.close();
        return;
      }
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = parseAuthorizedKeys(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (msg) {
          if (onKeys) {
            const usable = usableOperatorKeys(msg.keys, (k, problem) => log.warn({ user: k.user, err: problem }, 'ignored an unusable operator key from the relay'));
            onKeys(usable);
            log.info({ keys: usable.length }, 'operator keys updated');
          }
          clearTimeout(timer);
          firstDone();
        } else {
          log.warn('ignored a malformed operator key list from the relay');
        }
      }
    });
  });
}

/**
 * The pushed keys that the built-in server may accept. The device checks each key itself:
 * a relay bug alone must not let in a key that anyone can sign for (a small-order point).
 */
export function usableOperatorKeys(keys: readonly AuthorizedKey[], onUnusable: (key: AuthorizedKey, problem: string) => void): AuthorizedKey[] {
  return keys.filter((k) => {
    try {
      parsePublicKey(k.line);
      return true;
    } catch (err) {
      onUnusable(k, (err as Error).message);
      return false;
    }
  });
}
