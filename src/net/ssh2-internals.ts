/**
 * The places where ferry reaches past ssh2's public API, kept together so that an ssh2
 * upgrade has one file to check. package.json pins ssh2 exactly, and
 * test/unit/ssh2-contract.test.ts checks the shape of every internal below and, for each
 * upstream bug a patch works around, that upstream still has it (when that test fails, the
 * patch can go). Every place in src/ that relies on more than ssh2's documented API:
 *
 * - `rejectWithMessage`: `conn._protocol.channelOpenFail(recipient, reason, description)`,
 *   wrapped for the one synchronous call inside ssh2's `reject()` (used by agent/link.ts,
 *   agent/embedded/server.ts, relay/device-link.ts, relay/operator-session.ts).
 * - `socketOf`: a server connection's transport, `conn._sock` (relay/front-door.ts,
 *   relay/device-link.ts, agent/embedded/server.ts).
 * - `fixSsh2StaleChunks`: `ssh2/lib/Channel.js`, `Channel.prototype._write` and the
 *   server-side stderr class's `_write`, and the fields `_chunk`, `_chunkcb`, `_chunkErr`,
 *   `_chunkcbErr` and `_channel`. Its second half is agent/embedded/session.ts writing
 *   stdout and stderr one at a time.
 * - `quietChannelDestroy`: `Channel.prototype.destroy`, `close`, `end`.
 * - `poolPaddingRandomness`: `ssh2/lib/protocol/crypto.js`, `CIPHER_INFO`, `createCipher`
 *   and the AEAD cipher classes' `allocPacket` (CTR ciphers keep ssh2's own).
 * - `honourRightKexGuess`: `ssh2/lib/protocol/Protocol.js`, an accessor for
 *   `_skipNextInboundPacket`, reading `_kex._kexinit` and `_kex._remoteKexinit`.
 * - `surfaceEndOfWrite` / `onEndOfWrite`: one connection's
 *   `_protocol._handlers.CHANNEL_REQUEST` and its `_chanMgr` entries, so that
 *   `eow@openssh.com` reaches the built-in server's session (agent/embedded/session.ts).
 * - relay/front-door.ts (behaviour, no field): ssh2 starts reading an injected socket with
 *   a `data` listener of its own, after `injectSocket` returns, so the front door's listener,
 *   added first, runs first and can pause the socket to queue a handshake.
 * - agent/embedded/server.ts (behaviour, no field): ssh2's server takes
 *   `no-more-sessions@openssh.com` and then refuses session channels itself, but only on a
 *   connection that has a `request` listener.
 */
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Client, Connection } from 'ssh2';
import { kexGuessIsRight } from '../protocol/ssh-algorithms.ts';

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = { prohibited: 1, connectFailed: 2 } as const;

interface ProtocolLike { channelOpenFail(recipient: number, reason: number, description: string): void }

/**
 * Refuses a channel open (on either end of a connection) with a description the peer shows to the user.
 * ssh2's `reject()` always sends an empty description, so OpenSSH would print only
 * "open failed: connect failed:"; the operator needs to read *why* (offline? unknown?).
 * `reject` calls `channelOpenFail` synchronously, so wrapping it for that one call is safe.
 */
export function rejectWithMessage(conn: Connection | Client, reject: () => void, reason: number, message: string): void {
  const proto = (conn as unknown as { _protocol?: ProtocolLike })._protocol;
  if (!proto || typeof proto.channelOpenFail !== 'function') {
    reject();
    return;
  }
  const original = proto.channelOpenFail;
  proto.channelOpenFail = (recipient: number) => original.call(proto, recipient, reason, message);
  try {
    reject();
  } finally {
    proto.channelOpenFail = original;
  }
}

/** The transport socket of a server-side ssh2 connection (ssh2 keeps it as `_sock`). */
export function socketOf(conn: Connection): Socket | undefined {
  return (conn as unknown as { _sock?: Socket })._sock;
}

interface ChunkState { _chunk?: Buffer; _chunkcb?: () => void; _chunkErr?: Buffer; _chunkcbErr?: () => void }
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 internals are untyped
type WriteFn = (this: any, data: Buffer, encoding: unknown, cb: () => void) => void;

let chunkFixApplied = false;
let paddingPoolApplied = false;
let quietDestroyApplied = false;
let kexGuessFixApplied = false;

/** Applies every ssh2 patch below; call before the first connection. Idempotent. */
export function patchSsh2(): void {
  fixSsh2StaleChunks();
  poolPaddingRandomness();
  quietChannelDestroy();
  honourRightKexGuess();
}

/** What `honourRightKexGuess` reads of ssh2's Protocol and of its key exchange in progress. */
interface KexGuessState {
  _kex?: { _kexinit?: Uint8Array; _remoteKexinit?: Uint8Array };
  [GUESS_PENDING]?: boolean;
}
const GUESS_PENDING = Symbol('ferry.kexGuessPending');

/**
 * Works around an ssh2 1.17 bug: it drops the peer's guessed first key-exchange packet
 * (RFC 4253 §7, `first_kex_packet_follows`) even when the guess is right. Its check compares
 * the negotiated name with `remote.kex[0]` after it has overwritten `remote.kex`, the list,
 * with that name (a string), so it compares with the name's first letter and never matches.
 * Dropbear's dbclient guesses, and when ferry's first key exchange and host key are also its
 * own first ones, it waits for a reply to the packet ssh2 dropped until the login grace time
 * ends the connection. ssh2 records its decision in `_skipNextInboundPacket`, set while it
 * reads the KEXINIT and read at the next packet; this accessor keeps ssh2's "skip" only when
 * the guess really was wrong, judged from both KEXINIT payloads (protocol/ssh-algorithms.ts),
 * which the key exchange holds by then. Idempotent.
 */
export function honourRightKexGuess(): void {
  if (kexGuessFixApplied) return;
  kexGuessFixApplied = true;
  const require = createRequire(import.meta.url);
  const Protocol = require('ssh2/lib/protocol/Protocol.js') as { prototype: object };
  Object.defineProperty(Protocol.prototype, '_skipNextInboundPacket', {
    configurable: true,
    get(this: KexGuessState): boolean {
      if (!this[GUESS_PENDING]) return false;
      const local = this._kex?._kexinit;
      const remote = this._kex?._remoteKexinit;
      if (local && remote && kexGuessIsRight(local, remote)) {
        this[GUESS_PENDING] = false;
        return false;
      }
      return true;
    },
    set(this: KexGuessState, skip: boolean) {
      this[GUESS_PENDING] = skip;
    },
  });
}

/**
 * ssh2's `Channel.destroy()` is `end()` then `close()`, and Node calls `destroy()` itself
 * when a channel has finished (autoDestroy). `end()` on a stream that has already ended
 * makes Node build an ERR_STREAM_ALREADY_FINISHED error, stack trace and all, that nobody
 * reads: 4% of the relay's and the agent's CPU per tunnelled connection. An ended channel
 * is only closed. Idempotent.
 */
export function quietChannelDestroy(): void {
  if (quietDestroyApplied) return;
  quietDestroyApplied = true;
  const require = createRequire(import.meta.url);
  type Destroyable = { writableEnded: boolean; close(): void; destroy(): unknown };
  const { Channel } = require('ssh2/lib/Channel.js') as { Channel: { prototype: Destroyable } };
  const destroy = Channel.prototype.destroy;
  Channel.prototype.destroy = function (this: Destroyable) {
    if (!this.writableEnded) return destroy.call(this);
    this.close();
    return this;
  };
}

/**
 * Works around an ssh2 1.17 bug: a write that waited for window space stays recorded as
 * waiting after it has gone out, so a later wait on the channel's stderr (or stdout) makes
 * the next window adjust send the old data again, and the write actually waiting is never
 * resumed: duplicated stdout and lost stderr when a program writes much to both. Clearing
 * the record at every write fixes the first half; writing stdout and stderr one at a time
 * (see the embedded server's session) avoids the second. Idempotent.
 */
export function fixSsh2StaleChunks(): void {
  if (chunkFixApplied) return;
  chunkFixApplied = true;
  const require = createRequire(import.meta.url);
  const { Channel } = require('ssh2/lib/Channel.js') as { Channel: { prototype: { _write: WriteFn } } & (new (...args: unknown[]) => { stderr: object }) };
  const write = Channel.prototype._write;
  Channel.prototype._write = function (this: ChunkState, data, encoding, cb) {
    this._chunk = undefined;
    this._chunkcb = undefined;
    return write.call(this, data, encoding, cb);
  };
  // The server-side stderr class is not exported: reach it through a detached channel.
  const stderrProto = Object.getPrototypeOf(new Channel({}, { incoming: {}, outgoing: {} }, { server: true }).stderr) as { _write: WriteFn };
  const writeErr = stderrProto._write;
  stderrProto._write = function (this: { _channel: ChunkState }, data, encoding, cb) {
    this._channel._chunkErr = undefined;
    this._channel._chunkcbErr = undefined;
    return writeErr.call(this, data, encoding, cb);
  };
}

/** Random bytes for packet padding, drawn from one buffer refilled by the system CSPRNG. */
const PAD_POOL_BYTES = 4096;
const padPool = Buffer.allocUnsafe(PAD_POOL_BYTES);
let padPoolUsed = PAD_POOL_BYTES;

/** Copies `n` (≤ 255) fresh random bytes into `dst` at `offset`; no byte of the pool is handed out twice. */
export function fillPadding(dst: Buffer, offset: number, n: number): void {
  if (padPoolUsed + n > PAD_POOL_BYTES) {
    randomFillSync(padPool);
    padPoolUsed = 0;
  }
  padPool.copy(dst, offset, padPoolUsed, padPoolUsed + n);
  padPoolUsed += n;
}

interface CipherInfo { blockLen: number; keyLen: number; ivLen: number; authLen: number }
interface CipherLike { allocPacket(payloadLen: number): Buffer; free(): void }

/** The AEAD ciphers ferry negotiates (see protocol/ssh-algorithms.ts); their packets are built alike. */
const AEAD_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];

/**
 * ssh2 fills every outgoing packet's 4–19 padding bytes with its own `randomFillSync` call:
 * a tenth of the relay's CPU when it moves bulk data or many small packets. This replaces
 * the AEAD ciphers' `allocPacket` with the same layout (RFC 4253 §6; for these ciphers the
 * length field is outside the block alignment and a 16-byte tag follows) whose padding is
 * taken from a pooled random buffer. Idempotent.
 */
export function poolPaddingRandomness(): void {
  if (paddingPoolApplied) return;
  paddingPoolApplied = true;
  const require = createRequire(import.meta.url);
  const crypto = require('ssh2/lib/protocol/crypto.js') as {
    CIPHER_INFO: Record<string, CipherInfo>;
    createCipher(config: object): CipherLike;
  };
  for (const name of AEAD_CIPHERS) {
    const info = crypto.CIPHER_INFO[name]!;
    // The cipher classes are not exported: reach the one ssh2 would use through an instance.
    const sample = crypto.createCipher({ outbound: {
      onWrite: () => {}, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), cipherIV: Buffer.alloc(info.ivLen), seqno: 0,
    } });
    sample.free();
    const proto = Object.getPrototypeOf(sample) as CipherLike;
    const { blockLen, authLen } = info;
    proto.allocPacket = function allocPacket(payloadLen: number): Buffer {
      const unpadded = 1 + payloadLen;
      let padLen = blockLen - (unpadded % blockLen);
      if (padLen < 4) padLen += blockLen;
      const packet = Buffer.allocUnsafe(4 + unpadded + padLen + authLen);
      packet.writeUInt32BE(unpadded + padLen, 0);
      packet[4] = padLen;
      fillPadding(packet, 5 + payloadLen, padLen);
      return packet;
    };
  }
}

// ---------------------------------------------------------------------------------------
// eow@openssh.com on the server side (the agent's built-in SSH server).

/** The channel request OpenSSH sends when its local output (the reader of `ssh`'s stdout) has closed. */
export const END_OF_WRITE_REQUEST = 'eow@openssh.com';
/** The event `surfaceEndOfWrite` emits on an ssh2 server Session for that request. */
const END_OF_WRITE_EVENT = 'ferry:eow';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 internals are untyped
type ChannelRequestHandler = (proto: any, recipient: number, type: string, wantReply: boolean, data: unknown) => void;
interface SessionLike { type?: unknown; server?: unknown; _chanInfo?: { outgoing: { id: number } }; emit(event: string): boolean }
interface ServerConnectionInternals {
  _protocol?: { _handlers?: { CHANNEL_REQUEST?: ChannelRequestHandler }; channelSuccess(id: number): void };
  _chanMgr?: { get(id: number): unknown };
}

/**
 * Makes one server-side connection announce `eow@openssh.com` on its session channels (see
 * `onEndOfWrite`). ssh2's server silently refuses every channel request it does not know, and
 * this one matters: without it, `ssh device CMD | head` never ends and the command's whole
 * output crosses the relay. The connection's handler table is its own object, so wrapping its
 * CHANNEL_REQUEST entry changes nothing for other connections. Returns false (and changes
 * nothing) when ssh2's internals no longer have the expected shape.
 */
export function surfaceEndOfWrite(conn: Connection): boolean {
  const c = conn as unknown as ServerConnectionInternals;
  const proto = c._protocol;
  const handlers = proto?._handlers;
  const original = handlers?.CHANNEL_REQUEST;
  const channels = c._chanMgr;
  if (!proto || !handlers || typeof original !== 'function' || typeof channels?.get !== 'function' || typeof proto.channelSuccess !== 'function') return false;
  handlers.CHANNEL_REQUEST = (p, recipient, type, wantReply, data) => {
    const session = type === END_OF_WRITE_REQUEST ? channels.get(recipient) as SessionLike | undefined : undefined;
    // Only a session's own entry (ssh2's Session), never a forwarding channel: those are plain Channels.
    if (session && typeof session === 'object' && session.type === 'session' && session.server === true && session._chanInfo) {
      session.emit(END_OF_WRITE_EVENT);
      // OpenSSH sends it without want-reply; answer anyway if a client asks.
      if (wantReply) proto.channelSuccess(session._chanInfo.outgoing.id);
      return;
    }
    original(p, recipient, type, wantReply, data);
  };
  return true;
}

/** Calls `fn` when the client of this server-side session sends `eow@openssh.com` (needs `surfaceEndOfWrite` on its connection). */
export function onEndOfWrite(session: import('ssh2').Session, fn: () => void): void {
  (session as unknown as { on(event: string, fn: () => void): void }).on(END_OF_WRITE_EVENT, fn);
}
