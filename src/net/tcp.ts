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
 *
 * `localAddress`: the source address to connect from (default: the system's choice).
 *
 * `redialMs`: while no answer has come, start another connect this often, and keep the
 * first that succeeds. On a path that drops packets the kernel resends a SYN after 1, 3,
 * 7 s and then not for 8 s more, so a path that comes back in between is only found that
 * late; a fresh connect every `redialMs` finds it within `redialMs`, while each connect
 * still has the whole `timeoutMs` (a slow link keeps working). Any error (refused, no
 * route) ends them all at once: the network answered.
 */
export function connectTcp(host: string, port: number, timeoutMs: number, halfOpen = true, redialMs = 0, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // `highWaterMark` (both directions) is missing from @types/node 20's connect options.
    const options = { host, port, noDelay: true, allowHalfOpen: halfOpen, highWaterMark: LIMITS.socketBufferBytes, ...(localAddress ? { localAddress } : {}) };
    const pending = new Set<Socket>();
    let redial: NodeJS.Timeout | undefined;
    const settle = (winner: Socket | null) => {
      clearTimeout(timer);
      clearInterval(redial);
      for (const s of pending) if (s !== winner) s.destroy();
      pending.clear();
    };
    const dial = () => {
      const socket = coalesceWrites(connect(options));
      pending.add(socket);
      const onError = (err: NodeJS.ErrnoException) => {
        if (!pending.has(socket)) return;
        settle(null);
        reject(new FerryError('FERRY_CONNECT_FAILED', `cannot connect to ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        settle(socket);
        socket.off('error', onError);
        resolve(socket);
      });
    };
    const timer = setTimeout(() => {
      settle(null);
      reject(new FerryError('FERRY_TIMEOUT', `connecting to ${host}:${port} took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    dial();
    if (redialMs > 0) redial = setInterval(dial, redialMs);
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
