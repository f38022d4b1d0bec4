/**
 * A WebSocket as the byte stream an SSH transport runs on, for both ends of the agent link
 * over wss://. Not ws's createWebSocketStream, for three reasons:
 *
 * - It is never half-open: when the WebSocket closes, for any reason, the stream is destroyed,
 *   so ssh2 sees 'close' and the relay unregisters the link (a half-open stream never closes:
 *   the pitfalls note).
 * - It pings: a peer that has not answered one ping by the next is terminated, so a path that
 *   silently lost the peer (a proxy that dropped the connection without a FIN) ends within
 *   two intervals, and a proxy that drops idle connections sees traffic.
 * - Writes that wait batch into one message (`_writev`), up to `maxMessageBytes`: ssh2 writes
 *   every SSH packet on its own, and one WebSocket frame (and TLS record) per packet costs.
 *
 * Binary messages only; a text message is a protocol error and ends the stream.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** How a stream runs. */
export interface WebSocketStreamOptions {
  /** Ping this often; a ping unanswered by the next one terminates the socket. */
  pingIntervalMs: number;
  /** The largest message sent; batched writes are cut at this size. The peer's maxPayload must allow it. */
  maxMessageBytes: number;
  /** Bytes the stream buffers either way before it pushes back. */
  highWaterMark: number;
  /**
   * The relay's end only: the upgraded socket under this (server-side) WebSocket. Writes then
   * go onto it as whole unmasked binary frames, header and payload in one buffer: ws would
   * write the two as separate buffers, which TLS copies into one again before it encrypts.
   * Safe beside ws's own frames (pings, the close) because without compression ws writes
   * each of its frames synchronously, whole, and so does this.
   */
  serverSocket?: Duplex;
}

/** One unmasked, final, binary WebSocket frame (RFC 6455 §5.2) holding `chunks`, in one buffer. */
export function binaryFrame(chunks: readonly Buffer[], size: number): Buffer {
  const head = size < 126 ? 2 : size < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + size);
  frame[0] = 0x82;
  if (head === 2) {
    frame[1] = size;
  } else if (head === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(size / 2 ** 32), 2);
    frame.writeUInt32BE(size >>> 0, 6);
  }
  let at = head;
  for (const c of chunks) at += c.copy(frame, at);
  return frame;
}

/** The remote end as ssh2 reads it off a transport (`remoteAddress`, `remotePort`). */
export interface StreamPeer { remoteAddress: string; remotePort: number }

/**
 * Wraps an OPEN WebSocket. `peer` is set on the stream as `remoteAddress`/`remotePort`, where
 * ssh2's server reads a connection's address.
 */
export function webSocketStream(ws: WebSocket, o: WebSocketStreamOptions, peer?: StreamPeer): Duplex {
  let answered = true;
  const pinger = setInterval(() => {
    if (!answered) {
      ws.terminate();
      return;
    }
    answered = false;
    ws.ping();
  }, o.pingIntervalMs);
  pinger.unref();
  const raw = o.serverSocket;
  const send = (chunks: Buffer[], size: number, cb: (err?: Error | null) => void) => {
    if (ws.readyState !== ws.OPEN) return cb(new Error('the WebSocket is closed'));
    if (raw) raw.write(binaryFrame(chunks, size), cb);
    else ws.send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), { binary: true }, cb);
  };
  // One message per run of chunks up to the size limit (a chunk over it is cut: this is a
  // byte stream), the callback after the last.
  const sendAll = (chunks: Buffer[], cb: (err?: Error | null) => void) => {
    // The common case, one SSH packet at a time: no batching to do.
    if (chunks.length === 1 && chunks[0]!.length <= o.maxMessageBytes) return send(chunks, chunks[0]!.length, cb);
    const batches: { chunks: Buffer[]; size: number }[] = [];
    let batch: Buffer[] = [];
    let size = 0;
    for (let chunk of chunks) {
      while (chunk.length > 0) {
        if (size === o.maxMessageBytes) {
          batches.push({ chunks: batch, size });
          batch = [];
          size = 0;
        }
        const piece = chunk.length <= o.maxMessageBytes - size ? chunk : chunk.subarray(0, o.maxMessageBytes - size);
        batch.push(piece);
        size += piece.length;
        chunk = chunk.subarray(piece.length);
      }
    }
    if (size > 0) batches.push({ chunks: batch, size });
    for (let i = 0; i < batches.length - 1; i++) send(batches[i]!.chunks, batches[i]!.size, () => {});
    const last = batches.at(-1);
    if (last) send(last.chunks, last.size, cb);
    else cb();
  };
  const stream = new Duplex({
    allowHalfOpen: false,
    readableHighWaterMark: o.highWaterMark,
    writableHighWaterMark: o.highWaterMark,
    read() { ws.resume(); },
    write(chunk: Buffer, _enc, cb) { sendAll([chunk], cb); },
    writev(chunks: { chunk: Buffer }[], cb) { sendAll(chunks.map((c) => c.chunk), cb); },
    final(cb) {
      ws.close(1000);
      cb();
    },
    destroy(err, cb) {
      clearInterval(pinger);
      if (ws.readyState !== ws.CLOSED) ws.terminate();
      cb(err);
    },
  });
  if (peer) Object.assign(stream, peer);
  ws.on('pong', () => { answered = true; });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    // Any traffic shows the peer is there.
    answered = true;
    if (!isBinary) {
      stream.destroy(new Error('the peer sent a text message on a binary link'));
      return;
    }
    if (!stream.push(data)) ws.pause();
  });
  ws.once('close', () => {
    clearInterval(pinger);
    // What has arrived is read first (a flowing reader has it already), then the stream ends
    // both ways: a closed WebSocket is a closed transport.
    stream.push(null);
    setImmediate(() => stream.destroy());
  });
  ws.on('error', (err) => stream.destroy(err));
  return stream;
}
