// The contract between ferry and the ssh2 internals it relies on (src/net/ssh2-internals.ts
// lists them). Each shape test fails when an internal changes shape in an ssh2 upgrade; each
// "upstream still has the bug" test runs a fresh, unpatched copy of ssh2 and fails when
// upstream has fixed what a patch works around, so that the patch can be dropped. No
// sockets: connections run over in-memory streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Algorithms, Connection } from 'ssh2';
import { END_OF_WRITE_REQUEST, OPEN_FAILURE, onEndOfWrite, patchSsh2, rejectWithMessage, socketOf, surfaceEndOfWrite } from '../../src/net/ssh2-internals.ts';
import { SSH_ALGORITHMS } from '../../src/protocol/ssh-algorithms.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { ROOT } from '../helpers/fixture.ts';
import { streamPair } from '../helpers/stream-pair.ts';

patchSsh2();
const require = createRequire(import.meta.url);
// node_modules may be a symlink; the require cache is keyed by real paths.
const SSH2_LIB = realpathSync(join(ROOT, 'node_modules/ssh2/lib'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ssh2 internals are untyped
type Any = any;

/**
 * A module of ssh2 loaded again from disk, with none of ferry's patches: the whole of ssh2 is
 * taken out of the require cache for the load and put back after, so the patched copy that
 * the rest of the process uses stays as it was.
 */
function unpatched(relPath: string): Any {
  const ours = Object.keys(require.cache).filter((k) => k.startsWith(SSH2_LIB));
  const saved = new Map(ours.map((k) => [k, require.cache[k]]));
  for (const k of ours) delete require.cache[k];
  try {
    return require(join(SSH2_LIB, relPath));
  } finally {
    for (const k of Object.keys(require.cache)) if (k.startsWith(SSH2_LIB)) delete require.cache[k];
    for (const [k, m] of saved) require.cache[k] = m;
  }
}

test('the installed ssh2 is exactly the version package.json pins', () => {
  const pinned = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies.ssh2;
  const installed = (JSON.parse(readFileSync(join(ROOT, 'node_modules/ssh2/package.json'), 'utf8')) as { version: string }).version;
  assert.match(pinned ?? '', /^\d+\.\d+\.\d+$/, 'ssh2 must be pinned to an exact version: ferry patches its internals');
  assert.equal(installed, pinned);
});

/** An ssh2 server and client joined in memory; resolves when the client is ready. */
async function connectedPair(onConnection: (conn: Connection, serverSide: Duplex) => void, clientConfig: Partial<ssh2.ConnectConfig> = {}): Promise<{ client: InstanceType<typeof ssh2.Client>; end(): void }> {
  const [clientSide, serverSide] = streamPair();
  const { privateKey: hostKey } = generateKeyPair('host');
  const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: SSH_ALGORITHMS as Algorithms }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    onConnection(conn, serverSide);
  });
  server.injectSocket(serverSide as never);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ sock: clientSide, username: 'u', hostVerifier: () => true, ...clientConfig });
  });
  return { client, end: () => { client.end(); clientSide.destroy(); serverSide.destroy(); } };
}

test('shape: a server connection has _protocol.channelOpenFail(recipient, reason, description) and _sock', async () => {
  const Protocol = require('ssh2/lib/protocol/Protocol.js') as Any;
  assert.equal(typeof Protocol.prototype.channelOpenFail, 'function');
  assert.equal(Protocol.prototype.channelOpenFail.length, 3);
  let seen: { conn: Connection; stream: Duplex } | null = null;
  const pair = await connectedPair((conn, stream) => { seen = { conn, stream }; });
  try {
    const { conn, stream } = seen!;
    assert.ok((conn as Any)._protocol instanceof Protocol, 'conn._protocol is the Protocol');
    assert.equal(socketOf(conn), stream, 'conn._sock is the transport stream');
    assert.ok((pair.client as Any)._protocol instanceof Protocol, 'a Client has _protocol too');
  } finally {
    pair.end();
  }
});

test('shape: ssh2 reads an injected socket with a data listener of its own, after the listeners already there (front-door.ts relies on it)', async () => {
  const [, serverSide] = streamPair();
  const { privateKey: hostKey } = generateKeyPair('host');
  const server = new ssh2.Server({ hostKeys: [hostKey] }, () => {});
  // front-door.ts adds its listener before injectSocket, so that it runs first and can pause the socket.
  const ours = () => {};
  serverSide.on('data', ours);
  server.injectSocket(serverSide as never);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(serverSide.listenerCount('data'), 2, 'ssh2 reads the socket with a data listener');
  assert.equal(serverSide.listeners('data')[0], ours, 'the listener added first runs first');
  serverSide.destroy();
});

test('rejectWithMessage: the client sees the reason and the description', async () => {
  const pair = await connectedPair((conn) => {
    conn.on('tcpip', (_accept, reject) => rejectWithMessage(conn, reject, OPEN_FAILURE.prohibited, 'no device named cam'));
  });
  try {
    const err = await new Promise<Error & { reason?: number }>((resolve) => pair.client.forwardOut('127.0.0.1', 0, 'cam', 22, (e) => resolve(e as Error)));
    assert.equal(err.reason, OPEN_FAILURE.prohibited);
    assert.match(err.message, /no device named cam/);
  } finally {
    pair.end();
  }
});

test('upstream still has it: reject() sends an empty description (drop rejectWithMessage when this fails)', async () => {
  const pair = await connectedPair((conn) => conn.on('tcpip', (_accept, reject) => reject()));
  try {
    const err = await new Promise<Error & { reason?: number }>((resolve) => pair.client.forwardOut('127.0.0.1', 0, 'cam', 22, (e) => resolve(e as Error)));
    assert.equal(err.message, '(SSH) Channel open failure: ');
  } finally {
    pair.end();
  }
});

/** A server-side Channel on a fake protocol that records what it sends; `window` bytes may go out. */
function fakeChannel(ChannelClass: Any, window: number): { ch: Any; sent: string[] } {
  const sent: string[] = [];
  const protocol = {
    channelData: (_id: number, d: Buffer) => sent.push(`out:${d.toString()}`),
    channelExtData: (_id: number, d: Buffer) => sent.push(`err:${d.toString()}`),
    channelEOF: () => sent.push('eof'),
    channelClose: () => sent.push('close'),
  };
  const ch = new ChannelClass({ _protocol: protocol }, { type: 'session', incoming: { id: 0, window: 1 << 20, packetSize: 1 << 15, state: 'open' }, outgoing: { id: 1, window, packetSize: 1 << 15, state: 'open' } }, { server: true });
  return { ch, sent };
}

/** Writes 8 bytes with room for 4, then lets the rest out as ssh2's CHANNEL_WINDOW_ADJUST handler does; returns the record left. */
function resumedWrite(ChannelClass: Any): { chunk: unknown; sent: string[] } {
  const { ch, sent } = fakeChannel(ChannelClass, 4);
  ch._write(Buffer.from('abcdefgh'), null, () => sent.push('cb'));
  assert.equal(ch._waitWindow, true);
  assert.ok(ch._chunk, 'the unsent rest is recorded in _chunk');
  ch.outgoing.window = 100;
  ch._waitWindow = false;
  ch._write(ch._chunk, null, ch._chunkcb);
  return { chunk: ch._chunk, sent };
}

test('shape: Channel._write(data, encoding, cb) records a waiting write in _chunk/_chunkcb, stderr in _chunkErr/_chunkcbErr', () => {
  const { Channel } = require('ssh2/lib/Channel.js') as Any;
  assert.equal(Channel.prototype._write.length, 3);
  const { ch, sent } = fakeChannel(Channel, 0);
  assert.equal(typeof ch.stderr._write, 'function');
  assert.equal(ch.stderr._write.length, 3);
  assert.equal(ch.stderr._channel, ch, 'the server-side stderr reaches its channel as _channel');
  ch.stderr._write(Buffer.from('e'), null, () => {});
  assert.ok(Buffer.isBuffer(ch._chunkErr) && typeof ch._chunkcbErr === 'function', 'a waiting stderr write is recorded on the channel');
  const source = readFileSync(join(SSH2_LIB, 'client.js'), 'utf8') + readFileSync(join(SSH2_LIB, 'server.js'), 'utf8');
  assert.equal(source.match(/channel\._write\(channel\._chunk, null, channel\._chunkcb\)/g)?.length, 2, 'the window-adjust handlers resume _chunk');
  assert.deepEqual(sent, []);
});

test('fixSsh2StaleChunks: a resumed write that went out leaves no stale record', () => {
  const { Channel } = require('ssh2/lib/Channel.js') as Any;
  const r = resumedWrite(Channel);
  assert.deepEqual(r.sent, ['out:abcd', 'out:efgh', 'cb']);
  assert.equal(r.chunk, undefined);
});

test('upstream still has it: a resumed write stays recorded in _chunk (drop fixSsh2StaleChunks when this fails)', () => {
  const r = resumedWrite(unpatched('Channel.js').Channel);
  assert.deepEqual(r.sent, ['out:abcd', 'out:efgh', 'cb']);
  assert.ok(r.chunk, 'the write that has gone out is still recorded');
});

test('shape: Channel.destroy/close/end and writableEnded, as quietChannelDestroy uses them', () => {
  const { Channel } = require('ssh2/lib/Channel.js') as Any;
  for (const m of ['destroy', 'close', 'end']) assert.equal(typeof Channel.prototype[m], 'function', m);
  const { ch, sent } = fakeChannel(Channel, 100);
  ch.on('error', () => {});
  ch.end();
  assert.equal(ch.writableEnded, true);
  ch.destroy();
  assert.deepEqual(sent, ['eof', 'close'], 'an ended channel is only closed, once');
});

test('upstream still has it: destroy() on an ended channel calls end() again (drop quietChannelDestroy when this fails)', () => {
  const { Channel } = unpatched('Channel.js');
  const { ch } = fakeChannel(Channel, 100);
  ch.on('error', () => {});
  ch.end();
  let ends = 0;
  const end = ch.end;
  ch.end = function (...args: unknown[]) { ends++; return end.apply(this, args); };
  ch.destroy();
  assert.equal(ends, 1);
});

/** An outbound cipher as ssh2 would make it for `name` (with an etm MAC when it is not AEAD). */
function cipherFor(crypto: Any, name: string): Any {
  const info = crypto.CIPHER_INFO[name];
  const mac = crypto.MAC_INFO['hmac-sha2-256-etm@openssh.com'];
  return crypto.createCipher({ outbound: {
    onWrite: () => {}, cipherInfo: info, cipherKey: randomBytes(info.keyLen), cipherIV: randomBytes(info.ivLen), seqno: 0,
    ...(info.authLen ? {} : { macInfo: mac, macKey: randomBytes(mac.len) }),
  } });
}

/** Checks one packet's layout (RFC 4253 §6): length, at least 4 bytes of padding, block alignment. */
function assertPacketLayout(packet: Buffer, payloadLen: number, blockLen: number, what: string): void {
  const padLen = packet[4]!;
  assert.ok(padLen >= 4, `${what}: padding ${padLen} < 4`);
  assert.equal(packet.readUInt32BE(0), 1 + payloadLen + padLen, `${what}: packet_length`);
  // With AEAD and etm, the length field is outside the encrypted, aligned part.
  assert.equal((1 + payloadLen + padLen) % blockLen, 0, `${what}: block alignment`);
}

const AEAD = SSH_ALGORITHMS.cipher.filter((c) => c.includes('gcm') || c.includes('poly1305'));
const CTR = SSH_ALGORITHMS.cipher.filter((c) => c.endsWith('-ctr'));

test('ferry offers the AEAD ciphers before the CTR ones, so its own links use AEAD', () => {
  assert.deepEqual(SSH_ALGORITHMS.cipher, [...AEAD, ...CTR]);
  assert.ok(CTR.length > 0);
  assert.ok(SSH_ALGORITHMS.hmac.every((m) => m.endsWith('-etm@openssh.com')), 'only encrypt-then-MAC MACs');
});

test('shape: CIPHER_INFO, MAC_INFO and createCipher().allocPacket/free, as poolPaddingRandomness uses them', () => {
  const crypto = require('ssh2/lib/protocol/crypto.js') as Any;
  for (const name of [...AEAD, ...CTR]) {
    const info = crypto.CIPHER_INFO[name];
    for (const k of ['blockLen', 'keyLen', 'ivLen', 'authLen']) assert.equal(typeof info?.[k], 'number', `${name}.${k}`);
    const c = cipherFor(crypto, name);
    assert.equal(typeof c.allocPacket, 'function');
    assert.equal(c.allocPacket.length, 1);
    assert.equal(typeof c.free, 'function');
    c.free();
  }
  assert.equal(typeof crypto.MAC_INFO['hmac-sha2-256-etm@openssh.com']?.isETM, 'boolean');
});

test('pooled padding: AEAD packets have upstream\'s layout and fresh random padding; CTR keeps ssh2\'s own allocPacket', () => {
  const crypto = require('ssh2/lib/protocol/crypto.js') as Any;
  const fresh = unpatched('protocol/crypto.js');
  for (const name of [...AEAD, ...CTR]) {
    const ours = cipherFor(crypto, name);
    const theirs = cipherFor(fresh, name);
    const { blockLen } = crypto.CIPHER_INFO[name];
    for (const payloadLen of [0, 1, 7, 15, 16, 17, 100, 32_768]) {
      const a = ours.allocPacket(payloadLen);
      const b = ours.allocPacket(payloadLen);
      const ref = theirs.allocPacket(payloadLen);
      assertPacketLayout(a, payloadLen, blockLen, `${name} payload ${payloadLen}`);
      assert.equal(a.length, ref.length, `${name} payload ${payloadLen}: same size as upstream's (room for the tag or MAC included)`);
      assert.equal(a.readUInt32BE(0), ref.readUInt32BE(0));
      assert.equal(a[4], ref[4], 'same padding length as upstream\'s');
      const pad = (p: Buffer) => p.subarray(5 + payloadLen, 5 + payloadLen + p[4]!);
      assert.notDeepEqual(pad(a), pad(b), `${name}: two packets' padding differs`);
    }
    const pooled = /fillPadding\(/.test(String(Object.getPrototypeOf(ours).allocPacket));
    assert.equal(pooled, AEAD.includes(name), `${name}: allocPacket is ${AEAD.includes(name) ? 'ferry\'s pooled one' : 'ssh2\'s own'}`);
    ours.free();
    theirs.free();
  }
});

test('upstream still has it: ssh2 draws each packet\'s padding with its own randomFillSync (drop poolPaddingRandomness when this fails)', () => {
  const fresh = unpatched('protocol/crypto.js');
  for (const name of AEAD) {
    const c = cipherFor(fresh, name);
    assert.match(Object.getPrototypeOf(c).allocPacket.toString(), /randomFillSync\(/, name);
    c.free();
  }
});

// ---- The peer's guessed first key-exchange packet (RFC 4253 §7) ---------------------------

/** An SSH string or name-list. */
const sshString = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};

/** A cleartext packet (before NEWKEYS: no MAC, 8-byte alignment). */
function cleartextPacket(payload: Buffer): Buffer {
  let padLen = 8 - ((5 + payload.length) % 8);
  if (padLen < 4) padLen += 8;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + payload.length + padLen);
  head[4] = padLen;
  return Buffer.concat([head, payload, randomBytes(padLen)]);
}

/** What a client that guesses (like Dropbear's dbclient) sends: ident, KEXINIT with first_kex_packet_follows, KEX_ECDH_INIT. */
function guessingClientHello(kex: string[]): Buffer {
  const lists = [kex.join(','), 'ssh-ed25519', 'aes128-gcm@openssh.com', 'aes128-gcm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'none', 'none', '', ''];
  const kexinit = Buffer.concat([Buffer.from([20]), randomBytes(16), ...lists.map(sshString), Buffer.from([1, 0, 0, 0, 0])]);
  const publicDer = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' });
  const ecdhInit = Buffer.concat([Buffer.from([30]), sshString(publicDer.subarray(publicDer.length - 32))]);
  return Buffer.concat([Buffer.from('SSH-2.0-guesser_1.0\r\n'), cleartextPacket(kexinit), cleartextPacket(ecdhInit)]);
}

/** The message types a server Protocol (from `ProtocolClass`) sends after it has read `hello`. */
function serverAnswers(ProtocolClass: Any, serverKex: string[], hello: Buffer): number[] {
  const out: Buffer[] = [];
  const errors: Error[] = [];
  const key = ssh2.utils.parseKey(generateKeyPair('host').privateKey);
  const proto = new ProtocolClass({
    server: true, hostKeys: { 'ssh-ed25519': key }, onWrite: (d: Buffer) => out.push(Buffer.from(d)), onError: (e: Error) => errors.push(e),
    offer: { kex: serverKex, serverHostKey: ['ssh-ed25519'], cs: { cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256-etm@openssh.com'], compress: ['none'], lang: [] }, sc: { cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256-etm@openssh.com'], compress: ['none'], lang: [] } },
  });
  proto.start();
  proto.parse(hello, 0, hello.length);
  assert.deepEqual(errors, []);
  const all = Buffer.concat(out);
  const types: number[] = [];
  for (let at = all.indexOf('\r\n') + 2; at + 5 < all.length; at += 4 + all.readUInt32BE(at)) types.push(all[at + 5]!);
  return types;
}

const KEX_ECDH_REPLY = 31;
const CLIENT_KEX = ['curve25519-sha256', 'curve25519-sha256@libssh.org'];

test('shape: ssh2 records its decision on a guessed packet in Protocol._skipNextInboundPacket; the KeyExchange keeps both KEXINITs', () => {
  const kexSource = readFileSync(join(SSH2_LIB, 'protocol/kex.js'), 'utf8');
  assert.match(kexSource, /self\._skipNextInboundPacket = true;/);
  assert.match(kexSource, /if \(this\._skipNextInboundPacket\) \{\s*this\._skipNextInboundPacket = false;\s*return;/);
  assert.match(kexSource, /this\._kexinit = protocol\._kexinit;/);
  assert.match(kexSource, /this\._remoteKexinit = remoteKexinit;/);
  assert.match(readFileSync(join(SSH2_LIB, 'protocol/Protocol.js'), 'utf8'), /this\._skipNextInboundPacket = false;/);
});

test('honourRightKexGuess: a right guess is answered, a wrong one is skipped', () => {
  const Protocol = require('ssh2/lib/protocol/Protocol.js') as Any;
  // Same first kex and host key as the client: the guess is right and must be used.
  assert.ok(serverAnswers(Protocol, CLIENT_KEX, guessingClientHello(CLIENT_KEX)).includes(KEX_ECDH_REPLY), 'a right guess gets KEX_ECDH_REPLY');
  // A different first kex: the guess is wrong, the packet is skipped, and the client sends another.
  assert.ok(!serverAnswers(Protocol, [...CLIENT_KEX].reverse(), guessingClientHello(CLIENT_KEX)).includes(KEX_ECDH_REPLY), 'a wrong guess is skipped');
});

test('upstream still has it: ssh2 drops a right guess (drop honourRightKexGuess when this fails)', () => {
  const types = serverAnswers(unpatched('protocol/Protocol.js'), CLIENT_KEX, guessingClientHello(CLIENT_KEX));
  assert.ok(!types.includes(KEX_ECDH_REPLY), `unpatched ssh2 answered the guess: ${types.join(',')}`);
});

/** A server-side Session whose client has run `exec`, with the connection it belongs to. */
async function execSession(surface: boolean): Promise<{ conn: Any; session: Any; end(): void; surfaced: boolean }> {
  let surfaced = false;
  let resolveSession!: (v: { conn: Any; session: Any }) => void;
  const got = new Promise<{ conn: Any; session: Any }>((resolve) => { resolveSession = resolve; });
  const pair = await connectedPair((conn) => {
    if (surface) surfaced = surfaceEndOfWrite(conn);
    conn.on('session', (accept) => {
      const session = accept();
      session.on('exec', (acceptExec) => { acceptExec(); resolveSession({ conn, session }); });
    });
  });
  pair.client.exec('true', () => {});
  const { conn, session } = await got;
  return { conn, session, end: pair.end, surfaced };
}

test('shape: a server connection has its own _protocol._handlers.CHANNEL_REQUEST and _chanMgr.get, which surfaceEndOfWrite wraps', async () => {
  const { conn, session, end, surfaced } = await execSession(true);
  try {
    assert.equal(surfaced, true, 'surfaceEndOfWrite found the fields it needs');
    assert.equal(typeof conn._protocol._handlers.CHANNEL_REQUEST, 'function');
    assert.equal(conn._chanMgr.get(session._chanInfo.incoming.id), session, 'a session channel is found by its local id');
    assert.equal(session.type, 'session');
    assert.equal(session.server, true);
  } finally {
    end();
  }
});

test('surfaceEndOfWrite: eow@openssh.com on a session reaches onEndOfWrite', async () => {
  const { conn, session, end } = await execSession(true);
  try {
    let seen = 0;
    onEndOfWrite(session, () => { seen++; });
    conn._protocol._handlers.CHANNEL_REQUEST(conn._protocol, session._chanInfo.incoming.id, END_OF_WRITE_REQUEST, false, null);
    assert.equal(seen, 1);
  } finally {
    end();
  }
});

test('upstream still has it: ssh2 tells nobody of eow@openssh.com (drop surfaceEndOfWrite when this fails)', async () => {
  const { conn, session, end } = await execSession(false);
  try {
    const events: string[] = [];
    const emit = session.emit;
    session.emit = function (name: string, ...args: unknown[]) { events.push(name); return emit.call(this, name, ...args); };
    conn._protocol._handlers.CHANNEL_REQUEST(conn._protocol, session._chanInfo.incoming.id, END_OF_WRITE_REQUEST, false, null);
    assert.deepEqual(events, [], 'ssh2 emitted nothing for the request');
  } finally {
    end();
  }
});

/**
 * Opens a session, sends no-more-sessions@openssh.com (want-reply), then opens another; the
 * server connection has a 'request' listener when `withRequestListener`. Returns whether the
 * server agreed, how the second session went, and how many sessions ferry's code was asked for.
 */
async function noMoreSessions(withRequestListener: boolean): Promise<{ agreed: boolean; second: Error | undefined; sessions: number }> {
  let sessions = 0;
  const pair = await connectedPair((conn) => {
    if (withRequestListener) conn.on('request', (_accept, reject) => reject?.());
    conn.on('session', (accept) => {
      sessions++;
      accept().on('exec', (acceptExec) => { const ch = acceptExec(); ch.exit(0); ch.end(); });
    });
  // strictVendor off: the in-memory server's version is ssh2's, not OpenSSH's.
  }, { strictVendor: false });
  const open = () => new Promise<Error | undefined>((resolve) => pair.client.exec('true', (err) => resolve(err)));
  try {
    assert.equal(await open(), undefined, 'a session before the request is served');
    const agreed = await new Promise<boolean>((resolve) => pair.client.openssh_noMoreSessions((err) => resolve(!err)));
    return { agreed, second: await open(), sessions };
  } finally {
    pair.end();
  }
}

test('behaviour: after no-more-sessions@openssh.com, ssh2\'s server refuses session channels itself (the built-in server relies on it)', async () => {
  const r = await noMoreSessions(true);
  assert.equal(r.agreed, true, 'the server agreed to the request');
  assert.match(r.second?.message ?? '', /Channel open failure/, 'a session after the request is refused');
  assert.equal((r.second as Error & { reason?: number }).reason, OPEN_FAILURE.prohibited, 'administratively prohibited');
  assert.equal(r.sessions, 1, 'ssh2 refused it without asking ferry');
});

test('behaviour: ssh2 honours no-more-sessions@openssh.com only on a connection with a \'request\' listener (the built-in server keeps one)', async () => {
  const r = await noMoreSessions(false);
  assert.equal(r.agreed, false, 'without a listener the request is refused');
  assert.equal(r.second, undefined, 'and later sessions are still opened');
});
