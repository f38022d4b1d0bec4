/**
 * The load generator, run in the benchmark's own process (the relay, the agent, ssh and the
 * device's services are other processes): bulk bytes to the sink, 64-byte echoes, and new
 * connections to the banner, each through whatever local port the tunnel under test offers.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { connectLoopback, firstData } from './net-probes.ts';

const CHUNK = randomBytes(256 * 1024);
const CONNECT_TIMEOUT_MS = 10_000;

/** Writes `bytes` to `s` (a multiple of the chunk size, rounded up), honouring back-pressure, then ends it. */
function writeBytes(s: Socket, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = bytes;
    s.once('error', reject);
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void s.once('drain', pump);
      }
      s.end(() => resolve());
    };
    pump();
  });
}

/**
 * Sends `bytesPerStream` on each of `streams` connections at once and waits for the sink's
 * count after EOF; returns Gbit/s over the whole transfer (connects included).
 */
export async function throughput(port: number, streams: number, bytesPerStream: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  const one = async () => {
    const s = await connectLoopback(port, CONNECT_TIMEOUT_MS);
    try {
      const answer = firstData(s, timeoutMs);
      await writeBytes(s, bytesPerStream);
      const count = (await answer).readBigUInt64BE(0);
      if (count !== BigInt(bytesPerStream)) throw new Error(`the sink counted ${count} bytes, not ${bytesPerStream}`);
    } finally {
      s.destroy();
    }
  };
  await Promise.all(Array.from({ length: streams }, one));
  const seconds = (performance.now() - started) / 1000;
  return (streams * bytesPerStream * 8) / seconds / 1e9;
}

/** `count` round trips of `size` bytes on one connection after `warmup` untimed ones; returns µs per round trip. */
export async function roundTrips(port: number, count: number, warmup: number, size = 64, timeoutMs = 5_000): Promise<number[]> {
  const s = await connectLoopback(port, CONNECT_TIMEOUT_MS);
  const payload = randomBytes(size);
  const out: number[] = [];
  try {
    let pending: ((d: Buffer) => void) | null = null;
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= size && pending) { const p = pending; pending = null; got -= size; p(d); }
    });
    for (let i = 0; i < warmup + count; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`an echo took longer than ${timeoutMs} ms`)), timeoutMs);
        pending = () => { clearTimeout(timer); resolve(); };
        s.write(payload);
      });
      if (i >= warmup) out.push((performance.now() - t0) * 1000);
    }
  } finally {
    s.destroy();
  }
  return out;
}

/** `count` sequential new connections, each timed from connect() to the banner's first byte; returns ms. */
export async function newConnections(port: number, count: number, timeoutMs = 5_000): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const s = await connectLoopback(port, CONNECT_TIMEOUT_MS);
    try {
      await firstData(s, timeoutMs);
      out.push(performance.now() - t0);
    } finally {
      s.destroy();
    }
  }
  return out;
}
