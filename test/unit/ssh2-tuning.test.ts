// Covers the speed-ups around ssh2: pooled padding randomness and the quiet channel destroy
// (src/net/ssh2-internals.ts), write coalescing (src/net/tcp.ts) and the host key signer (src/common/ssh-keys.ts).
// Each must behave exactly as what it replaces.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { generateKeyPair, hostKeyForServer } from '../../src/common/ssh-keys.ts';
import { fillPadding, poolPaddingRandomness, quietChannelDestroy } from '../../src/net/ssh2-internals.ts';
import { connectTcp } from '../../src/net/tcp.ts';

interface CipherInfo { keyLen: number; ivLen: number; blockLen: number; authLen: number }
interface Cipher { allocPacket(n: number): Buffer; encrypt(packet: Buffer): void; free(): void }
interface Decipher { decrypt(data: Buffer, p: number, len: number): unknown }
const sshCrypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as {
  CIPHER_INFO: Record<string, CipherInfo>;
  createCipher(config: object): Cipher;
  createDecipher(config: object): Decipher;
};
const CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];

function pair(name: string, onWrite: (b: Buffer) => void, onPayload: (b: Buffer) => void): { cipher: Cipher; decipher: Decipher } {
  const info = sshCrypto.CIPHER_INFO[name]!;
  const key = Buffer.alloc(info.keyLen, 7);
  const iv = Buffer.alloc(info.ivLen, 3);
  return {
    cipher: sshCrypto.createCipher({ outbound: { onWrite, cipherInfo: info, cipherKey: key, cipherIV: iv, seqno: 0 } }),
    decipher: sshCrypto.createDecipher({ inbound: { onPayload, decipherInfo: info, decipherKey: key, decipherIV: iv, seqno: 0 } }),
  };
}

/** Packet length, padding length and buffer size of ssh2's allocPacket for each payload length. */
function layouts(name: string): string[] {
  const { cipher } = pair(name, () => {}, () => {});
  const out: string[] = [];
  for (let n = 0; n <= 70; n++) {
    const p = cipher.allocPacket(n);
    out.push(`${n}:${p.readUInt32BE(0)}/${p[4]}/${p.length}`);
  }
  for (const n of [32_768, 32_768 + 9]) {
    const p = cipher.allocPacket(n);
    out.push(`${n}:${p.readUInt32BE(0)}/${p[4]}/${p.length}`);
  }
  cipher.free();
  return out;
}

describe('pooled padding randomness', () => {
  // Recorded from ssh2's own allocPacket before the patch (each test file runs in its own process).
  const original = new Map(CIPHERS.map((name) => [name, layouts(name)]));
  poolPaddingRandomness();

  test('packets are laid out exactly as ssh2 lays them out', () => {
    for (const name of CIPHERS) assert.deepEqual(layouts(name), original.get(name), name);
  });

  test('a packet built by the patched cipher decrypts to its payload with ssh2', () => {
    for (const name of CIPHERS) {
      const got: Buffer[] = [];
      const wire: Buffer[] = [];
      const { cipher, decipher } = pair(name, (b) => wire.push(Buffer.from(b)), (b) => { got.push(Buffer.from(b)); });
      for (const text of ['', 'x', 'hello, device', 'y'.repeat(5000)]) {
        const payload = Buffer.from(text);
        const packet = cipher.allocPacket(payload.length);
        payload.copy(packet, 5);
        cipher.encrypt(packet);
      }
      const all = Buffer.concat(wire);
      decipher.decrypt(all, 0, all.length);
      assert.deepEqual(got.map((b) => b.toString()), ['', 'x', 'hello, device', 'y'.repeat(5000)], name);
    }
  });

  test('padding bytes are fresh on every call', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(16);
      fillPadding(b, 0, 16);
      seen.add(b.toString('hex'));
    }
    assert.equal(seen.size, 2000);
  });
});

describe('write coalescing', () => {
  test('writes of one turn leave together, in order, and the socket is uncorked after it', async () => {
    let resolveReceived!: (text: string) => void;
    const receivedAll = new Promise<string>((resolve) => { resolveReceived = resolve; });
    const server = createServer((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => { resolveReceived(Buffer.concat(parts).toString()); s.end(); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const socket = await connectTcp('127.0.0.1', port, 2000);
    for (const c of ['one ', 'two ', 'three']) socket.write(c);
    assert.equal(socket.writableCorked, 1, 'corked within the turn');
    await new Promise((r) => setImmediate(r));
    assert.equal(socket.writableCorked, 0, 'uncorked after the turn');
    socket.end();
    assert.equal(await receivedAll, 'one two three');
    server.close();
  });
});

describe('host key signer', () => {
  test('signs exactly as ssh2 does (Ed25519 is deterministic)', () => {
    const { privateKey } = generateKeyPair('t');
    const reference = ssh2.utils.parseKey(privateKey) as ssh2.ParsedKey;
    const fast = hostKeyForServer(privateKey);
    const data = Buffer.from('exchange hash');
    assert.deepEqual(fast.sign(data), reference.sign(data));
    assert.equal(reference.verify(data, fast.sign(data)), true);
  });

  test('refuses a key that is not an Ed25519 private key', () => {
    const { publicKey } = generateKeyPair('t');
    assert.throws(() => hostKeyForServer(publicKey.line), /not an Ed25519 private key/);
  });
});

describe('quiet channel destroy', () => {
  type Channel = import('node:stream').Duplex & { outgoing: { state: string } };
  const { Channel } = createRequire(import.meta.url)('ssh2/lib/Channel.js') as { Channel: new (...args: unknown[]) => Channel };
  /** A server-side channel on a fake connection that records what would be sent. */
  function channel(sent: string[]): Channel {
    const protocol = { channelEOF: () => sent.push('eof'), channelClose: () => sent.push('close'), channelData: () => sent.push('data') };
    return new Channel({ _protocol: protocol }, { type: 'session', incoming: { id: 0, window: 0, packetSize: 0, state: 'open' }, outgoing: { id: 1, window: 1 << 20, packetSize: 32_768, state: 'open' } }, { server: true });
  }

  test('destroying a channel that has ended sends CLOSE once and raises no error', async () => {
    quietChannelDestroy();
    const sent: string[] = [];
    const ch = channel(sent);
    const errors: Error[] = [];
    ch.on('error', (e: Error) => errors.push(e));
    await new Promise<void>((r) => ch.end(r));
    // A second end() is what builds the unread error: count any.
    let endsAfterEnd = 0;
    const end = ch.end.bind(ch);
    ch.end = ((...args: Parameters<typeof end>) => { endsAfterEnd++; return end(...args); }) as typeof ch.end;
    ch.destroy();
    ch.destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(endsAfterEnd, 0, 'an ended channel is not ended again');
    assert.deepEqual(sent, ['eof', 'close']);
    assert.equal(ch.outgoing.state, 'closing');
    assert.deepEqual(errors, []);
  });

  test('destroying an open channel still ends and closes it', () => {
    quietChannelDestroy();
    const sent: string[] = [];
    const ch = channel(sent);
    ch.destroy();
    assert.equal(ch.outgoing.state, 'closing');
    assert.ok(sent.includes('close'), sent.join());
  });
});
