// The relay's end of the agent link over WebSocket (`wss://RELAY/v1/agent`), against an
// in-process relay with an HTTPS listener and small limits: tokens carry the SSH address,
// then the wss:// endpoint, and the pin of the relay's self-signed certificate; a plain GET of
// the path is told what it is (426) and an upgrade elsewhere is a 404; an upgrade from an
// address over its share of unauthenticated connections is refused with a 503 and
// Retry-After before any WebSocket exists; X-Forwarded-For counts only from a proxy named by
// --trusted-proxy; an SSH connection carried by the WebSocket reaches the front door (the
// relay's SSH ident comes back inside it), and an operator login over it is refused; a real
// agent enrols and links over wss (the token's pin checked), is reached with ssh -J, its
// `device.connect` row says wss, and the same device linking again over TCP replaces the wss
// link (newest link wins whatever the transport).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { WebSocket } from 'ws';
import { tlsPinOf } from '../../src/common/tls-pin.ts';
import { webSocketStream } from '../../src/net/ws-stream.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import { selfSignedCertPath } from '../../src/relay/http/tls-cert.ts';
import { eventually, fileCleanup } from '../helpers/env.ts';
import { startAgent } from '../../src/agent/agent.ts';
import { startFixture, testAgentConfig, testLogger, type Fixture } from '../helpers/fixture.ts';
import { ssh } from '../helpers/ssh-client.ts';

const suite = fileCleanup(after);
/** Small, so that one test reaches it. */
const PER_ADDRESS = 3;
let f: Fixture;
let base: string;

before(async () => {
  f = await startFixture(suite, { httpListen: { host: '127.0.0.1', port: 0 }, maxUnauthenticatedPerAddress: PER_ADDRESS, trustedProxies: ['127.0.0.2'] });
  base = `wss://127.0.0.1:${f.relay.http!.address.port}`;
});

/** Opens a WebSocket to `path` on the relay; resolves with the open socket, or the HTTP status (and Retry-After) it was refused with. */
function upgrade(path: string, headers: Record<string, string> = {}, localAddress?: string): Promise<{ ws: WebSocket } | { status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${path}`, { rejectUnauthorized: false, perMessageDeflate: false, headers, ...(localAddress ? { localAddress } : {}) });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** Silent TCP connections to the SSH listener from 127.0.0.1: each holds one unauthenticated place of that address. */
async function holdSilent(n: number): Promise<Socket[]> {
  const held: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect(f.relay.sshAddress.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((resolve) => s.once('connect', resolve));
    held.push(s);
  }
  await eventually(() => f.relay.connections() === n || null, 5_000, 'the relay to hold the silent connections');
  return held;
}

test('tokens carry the SSH address, then the wss:// endpoint, and the pin of the self-signed certificate', () => {
  const decoded = decodeToken(f.token());
  assert.ok('claims' in decoded, 'the token decodes');
  const pin = tlsPinOf(new X509Certificate(readFileSync(selfSignedCertPath(join(f.dir, 'relay')))));
  assert.deepEqual([decoded.claims.endpoints, decoded.claims.tlsPin], [[f.relay.publicAddress, `${base}/v1/agent`], pin]);
});

test('a plain GET of the path is told it is a WebSocket (426); an upgrade to any other path is a 404', async () => {
  const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    httpsGet(`https://127.0.0.1:${f.relay.http!.address.port}/v1/agent`, { rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  assert.equal(got.status, 426);
  assert.match(JSON.parse(got.body).error.message, /is the agent's link, a WebSocket: point 'ferry agent --relay wss:\/\/HOST\/' here/);
  assert.deepEqual(await upgrade('/v1/agents'), { status: 404, retryAfter: undefined });
});

test('an SSH connection inside the WebSocket reaches the front door; an operator login over it is refused', async () => {
  const opened = await upgrade('/v1/agent');
  assert.ok('ws' in opened);
  // The relay prefers the cheaper of TLS 1.3's two AES suites.
  assert.equal((opened.ws as unknown as { _socket: TLSSocket })._socket.getCipher().name, 'TLS_AES_128_GCM_SHA256');
  const stream = webSocketStream(opened.ws, { pingIntervalMs: LIMITS.linkWsPingIntervalMs, maxMessageBytes: LIMITS.linkWsMaxMessageBytes, highWaterMark: LIMITS.socketBufferBytes });
  const client = new ssh2.Client();
  const outcome = await new Promise<{ ident: string; error: string }>((resolve) => {
    let ident = '';
    client.once('handshake', () => { ident = (client as unknown as { _remoteVer?: string })._remoteVer ?? 'handshake done'; });
    client.once('ready', () => resolve({ ident, error: 'logged in' }));
    client.once('error', (err: Error & { level?: string }) => resolve({ ident, error: err.level ?? err.message }));
    client.connect({ sock: stream, username: 'admin', privateKey: readFileSync(f.adminKey.path), hostVerifier: () => true, readyTimeout: 10_000 });
  });
  client.end();
  await eventually(() => f.relay.connections() === 0 || null, 5_000, 'the refused connection to close');
  assert.notEqual(outcome.ident, '', 'the SSH handshake with the relay finished inside the WebSocket');
  assert.equal(outcome.error, 'client-authentication', 'the admin key works over SSH, but not on the agent link');
});

test('an address over its share of unauthenticated connections gets a 503 with Retry-After, before any WebSocket; a trusted proxy speaks for its client', async (t) => {
  const held = await holdSilent(PER_ADDRESS);
  t.after(() => { for (const s of held) s.destroy(); });
  assert.deepEqual(await upgrade('/v1/agent'), { status: 503, retryAfter: String(LIMITS.linkWsRetryAfterSeconds) });
  // X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
  assert.deepEqual(await upgrade('/v1/agent', { 'x-forwarded-for': '203.0.113.7' }), { status: 503, retryAfter: String(LIMITS.linkWsRetryAfterSeconds) });
  // From the trusted proxy (127.0.0.2), the client it names has its own share.
  const proxied = await upgrade('/v1/agent', { 'x-forwarded-for': '203.0.113.7' }, '127.0.0.2');
  assert.ok('ws' in proxied, 'the trusted proxy\'s client is not the shed address');
  proxied.ws.terminate();
  for (const s of held) s.destroy();
  await eventually(() => f.relay.connections() === 0 || null, 5_000, 'the silent connections to close');
  const after = await upgrade('/v1/agent');
  assert.ok('ws' in after, 'once the address is under its share again, the upgrade goes through');
  after.ws.terminate();
});

test('an agent enrols and links over wss, is reached with ssh -J, and a newer TCP link of the same device replaces it', async (t) => {
  const cam = await f.device('ws-cam', { config: { relay: `${base}/` } });
  assert.deepEqual(cam.endpoints, [`${base}/v1/agent`]);
  const r = await ssh(f.admin, ['-J', 'relay', 'ws-cam', 'echo over wss; exit 3']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, 'over wss\n');
  const connects = () => f.relay.store.listAudit({ device: 'ws-cam', action: 'device.connect', limit: 10 }).map((a) => a.detail as { transport?: string; replaced?: boolean });
  assert.deepEqual(connects().map((d) => d.transport), ['wss']);

  // The same identity over TCP: the newer link wins, whatever the transport of the older one.
  const replaced = new Promise<string>((resolve) => cam.once('down', resolve));
  const tcp = await startAgent(testAgentConfig(join(f.dir, 'agent-ws-cam'), { relay: `127.0.0.1:${f.relay.sshAddress.port}` }), { log: testLogger('agent-ws-cam-tcp') });
  t.after(() => tcp.stop());
  await tcp.waitUntilUp();
  // The relay closed the older link: the wss agent hears its connection end.
  assert.equal(await replaced, 'connection lost');
  assert.deepEqual(connects()[1], { ...connects()[1], transport: 'tcp', replaced: true });
  await cam.stop();
});
