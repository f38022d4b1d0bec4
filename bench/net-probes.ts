/** Loopback TCP helpers for the benchmark: a free port, and bounded probes that a service answers end to end. */
import { connect, type Socket } from 'node:net';

/** A port that was free on 127.0.0.1 a moment ago (the throwaway sshd needs the same). */
export { freePort } from '../test/helpers/throwaway-sshd.ts';
import { sleep } from './processes.ts';

/** A connected socket to 127.0.0.1:port (Nagle off), or a rejection within `timeoutMs`. */
export function connectLoopback(port: number, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${port} timed out`)); }, timeoutMs);
    // After connecting, a reset shows as 'close' or as the caller's own error listener; never as a crash.
    s.once('connect', () => { clearTimeout(timer); s.off('error', onError); s.on('error', () => {}); resolve(s); });
    const onError = (err: Error) => { clearTimeout(timer); s.destroy(); reject(err); };
    s.once('error', onError);
  });
}

/** Resolves with the first chunk `s` receives, or rejects after `timeoutMs` or on EOF. */
export function firstData(s: Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error('no data in time')); }, timeoutMs);
    const onData = (d: Buffer) => { done(); resolve(d); };
    const onEnd = () => { done(); reject(new Error('closed before any data')); };
    const done = () => { clearTimeout(timer); s.off('data', onData); s.off('end', onEnd); s.off('close', onEnd); s.off('error', onEnd); };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
    s.once('error', onEnd);
  });
}

/** One try: does the banner service answer through `port`? */
export async function bannerAnswers(port: number, timeoutMs = 1_000): Promise<boolean> {
  let s: Socket | undefined;
  try {
    s = await connectLoopback(port, timeoutMs);
    await firstData(s, timeoutMs);
    return true;
  } catch {
    return false;
  } finally {
    s?.destroy();
  }
}

/** One try: does the sink answer through `port` (send nothing, EOF, expect a count of 0)? */
export async function sinkAnswers(port: number, timeoutMs = 1_000): Promise<boolean> {
  let s: Socket | undefined;
  try {
    s = await connectLoopback(port, timeoutMs);
    s.end();
    return (await firstData(s, timeoutMs)).length > 0;
  } catch {
    return false;
  } finally {
    s?.destroy();
  }
}

/** One try: does the echo service answer through `port`? */
export async function echoAnswers(port: number, timeoutMs = 1_000): Promise<boolean> {
  let s: Socket | undefined;
  try {
    s = await connectLoopback(port, timeoutMs);
    s.write('ping');
    return (await firstData(s, timeoutMs)).length > 0;
  } catch {
    return false;
  } finally {
    s?.destroy();
  }
}

/** Retries `probe` every `intervalMs` until it says yes; throws after `timeoutMs`. */
export async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
