// Covers the speed-ups around ssh2: pooled padding randomness (src/net/ssh2-internals.ts),
// write coalescing (src/net/tcp.ts) and the host key signer (src/common/ssh-keys.ts).
// Each must behave exactly as what it replaces.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { generateKeyPair, hostKeyForServer } from '../../src/common/ssh-keys.ts';
import { fillPadding, poolPaddingRandomness } from '../../src/net/ssh2-internals.ts';
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
