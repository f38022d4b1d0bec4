/** TCP connect with a deadline and the socket options every ferry transport wants. */
import { connect, type Socket } from 'node:net';
import { FerryError } from '../common/errors.ts';
import { LIMITS } from '../protocol/limits.ts';

/**
 * Connects to host:port, failing with a FerryError after `timeoutMs`. The socket has
 * Nagle off (a new channel through the tunnel would otherwise wait ~40 ms for an ACK).
 * `halfOpen` lets EOF travel one way while data still flows back: right for a byte stream
 * piped through the tunnel, wrong for an SSH transport, whose peer's FIN means it is gone
 * (a half-open transport never emits 'close', and the agent would not notice the loss).
 */
export function connectTcp(host: string, port: number, timeoutMs: number, halfOpen = true): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // `highWaterMark` (both directions) is missing from @types/node 20's connect options.
    const options = { host, port, noDelay: true, allowHalfOpen: halfOpen, highWaterMark: LIMITS.socketBufferBytes };
    const socket = coalesceWrites(connect(options));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FerryError('FERRY_TIMEOUT', `connecting to ${host}:${port} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new FerryError('FERRY_CONNECT_FAILED', `cannot connect to ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    };
    socket.once('error', onError);
  });
}

/**
 * Sends everything written to `socket` in one turn of the event loop with one writev():
 * the first write of a turn corks the socket, and it is uncorked after the turn's I/O
 * callbacks (`setImmediate`), so the packets of several reads leave together. ssh2 writes
 * each SSH packet on its own, and one read of a busy link holds many packets for other
 * channels and sockets; written one by one they cost a system call and a TCP segment
 * each (the relay's and the agent's hottest frame). Nagle stays off, so nothing waits
 * longer than the current turn. Returns `socket`.
 */
export function coalesceWrites<T extends Socket>(socket: T): T {
  const write = socket.write as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function coalescedWrite(...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return write.apply(socket, args);
  } as T['write'];
  return socket;
}

/** Splits HOST:PORT (with [v6]:PORT), or returns null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}
