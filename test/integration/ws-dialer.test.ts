// Covers src/net/ws-dialer.ts against a real local wss server (node:https with a self-signed
// certificate, ws.WebSocketServer) and a real HTTP proxy (tinyproxy): a matching pin gives a
// stream that echoes, a wrong pin fails before any byte is sent, an unpinned self-signed
// certificate fails in words, the relay's 503 and 404 and the proxy's 407 are explained, and
// no proxy password ever appears in a message.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { isFerryError } from '../../src/common/errors.ts';
import { tlsPinOf } from '../../src/common/tls-pin.ts';
import { isUnreachable } from '../../src/net/dialer.ts';
import { webSocketDialer, type WssEndpoint } from '../../src/net/ws-dialer.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { loadOrCreateSelfSigned } from '../../src/relay/http/tls-cert.ts';
import { tempDir } from '../helpers/env.ts';

const TINYPROXY = '/usr/bin/tinyproxy';
const noTinyproxy = existsSync(TINYPROXY) ? false : `${TINYPROXY} is missing: install the Debian package tinyproxy (apt-get install tinyproxy)`;

/** A wss server: /v1/agent echoes binary messages; /busy answers 503; anything else 404. */
async function startServer(t: { after(fn: () => unknown): void }) {
  const tls = loadOrCreateSelfSigned(tempDir(t), 'localhost');
  const binaryMessages: Buffer[] = [];
  let upgrades = 0;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: LIMITS.linkWsMaxMessageBytes });
  const server: Server = createHttpsServer({ cert: tls.cert, key: tls.key }, (_req, res) => { res.writeHead(400).end(); });
  server.on('upgrade', (req, socket: Socket, head) => {
    if (req.url === '/busy/v1/agent') {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    if (req.url !== '/v1/agent') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    upgrades++;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer, isBinary) => {
        if (!isBinary) return;
        binaryMessages.push(data);
        ws.send(data, { binary: true });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const port = (server.address() as AddressInfo).port;
  return { port, pin: tlsPinOf(tls.cert), binaryMessages, upgrades: () => upgrades };
}

/** A port nothing listens on (taken and let go). */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** tinyproxy in the foreground on a free loopback port, allowed to CONNECT only to `connectPort`. */
async function startTinyproxy(t: { after(fn: () => unknown): void }, connectPort: number, auth?: { user: string; pass: string }): Promise<number> {
  const dir = tempDir(t);
  const port = await closedPort();
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 30', `ConnectPort ${connectPort}`, 'LogLevel Info', 'MaxClients 20',
    ...(auth ? [`BasicAuth ${auth.user} ${auth.pass}`] : [])].join('\n') + '\n');
  const proc: ChildProcess = spawn(TINYPROXY, ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { proc.kill('SIGTERM'); });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (/Accepting connections/.test(seen)) resolve();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`tinyproxy exited (${code}) before it listened: ${seen}`)));
  });
  return port;
}

/** Writes `bytes` and resolves with what comes back (as many bytes). */
function echo(stream: Duplex, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      got.push(d);
      size += d.length;
      if (size >= bytes.length) resolve(Buffer.concat(got));
    });
    stream.once('error', reject);
    stream.write(bytes);
  });
}

const endpoint = (port: number, path = '/v1/agent', host = '127.0.0.1'): WssEndpoint => ({ transport: 'wss', host, port, path });

describe('WebSocket dialer', () => {
  // Cleanups run when the whole suite is done (the server serves every test).
  const cleanups: (() => unknown)[] = [];
  const suite = { after: (fn: () => unknown) => { cleanups.push(fn); } };
  after(async () => { for (const fn of cleanups.reverse()) await fn(); });
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => { server = await startServer(suite); });

  test('the pinned key: a stream that carries bytes both ways as binary messages', async () => {
    const stream = await webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: null }).dial(5_000);
    try {
      const bytes = Buffer.from('SSH-2.0-test\r\n' + 'x'.repeat(100_000));
      assert.deepEqual(await echo(stream, bytes), bytes);
      assert.ok(server.binaryMessages.length > 0);
    } finally {
      stream.destroy();
    }
  });

  test('a wrong pin fails with FERRY_TLS_PIN_MISMATCH naming both pins, and no message reached the server', async () => {
    const before = server.binaryMessages.length;
    const wrong = `sha256//${'A'.repeat(43)}=`;
    await assert.rejects(webSocketDialer(endpoint(server.port), { tlsPin: wrong, proxy: null }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_TLS_PIN_MISMATCH') && err.message.includes(wrong) && err.message.includes(server.pin) && /enrol again with a new token/.test(err.message));
    assert.equal(server.binaryMessages.length, before);
  });

  test('no pin and a self-signed certificate: a TLS error that names the host and what to do', async () => {
    const upgrades = server.upgrades();
    await assert.rejects(webSocketDialer(endpoint(server.port, '/v1/agent', 'localhost'), { tlsPin: null, proxy: null }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_CONNECT_FAILED') && /TLS certificate of localhost did not verify/.test(err.message)
      && /a CA this device trusts, or enrol with a token that pins/.test(err.message) && !isUnreachable(err));
    assert.equal(server.upgrades(), upgrades, 'no upgrade was asked for');
  });

  test("the relay's 503 says it is busy (not unreachable); a wrong path's 404 says to check the URL", async () => {
    await assert.rejects(webSocketDialer(endpoint(server.port, '/busy/v1/agent'), { tlsPin: server.pin, proxy: null }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_CONNECT_FAILED') && /the relay at wss:\/\/127\.0\.0\.1:\d+\/busy\/v1\/agent is busy; retrying \(503, Retry-After 7 s\)/.test(err.message) && !isUnreachable(err));
    await assert.rejects(webSocketDialer(endpoint(server.port, '/elsewhere/v1/agent'), { tlsPin: server.pin, proxy: null }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_CONNECT_FAILED') && /no ferry relay link at that path: check the wss:\/\/ URL/.test(err.message));
  });

  test('nothing listening: unreachable, in words', async () => {
    const port = await closedPort();
    await assert.rejects(webSocketDialer(endpoint(port), { tlsPin: server.pin, proxy: null }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_CONNECT_FAILED') && /cannot reach the relay at wss:\/\/127\.0\.0\.1:\d+\/v1\/agent: ECONNREFUSED/.test(err.message) && isUnreachable(err));
  });

  test('a proxy URL that is not http:// is refused at once, without its password', () => {
    assert.throws(() => webSocketDialer(endpoint(server.port), { tlsPin: null, proxy: new URL('https://u:secret@proxy.test:3128') }), (err: unknown) =>
      isFerryError(err, 'FERRY_CONFIG_INVALID') && /only to HTTP proxies/.test(err.message) && !err.message.includes('secret'));
  });

  test('an unreachable proxy: unreachable, named without its password', async () => {
    const port = await closedPort();
    await assert.rejects(webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://u:secret@127.0.0.1:${port}`) }).dial(5_000), (err: unknown) =>
      isFerryError(err, 'FERRY_CONNECT_FAILED') && err.message.includes(`cannot reach the proxy at http://u:***@127.0.0.1:${port}`) && !err.message.includes('secret') && isUnreachable(err));
  });

  describe('through tinyproxy', { skip: noTinyproxy }, () => {
    test('an open proxy carries the stream', async () => {
      const proxyPort = await startTinyproxy(suite, server.port);
      const stream = await webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://127.0.0.1:${proxyPort}`) }).dial(5_000);
      try {
        const bytes = Buffer.from('through the proxy');
        assert.deepEqual(await echo(stream, bytes), bytes);
      } finally {
        stream.destroy();
      }
    });

    test('a proxy that wants credentials: with them the stream works; without, the 407 says how to give them; wrong ones never show', async () => {
      const proxyPort = await startTinyproxy(suite, server.port, { user: 'dev', pass: 'hunter2' });
      const stream = await webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://dev:hunter2@127.0.0.1:${proxyPort}`) }).dial(5_000);
      try {
        const bytes = Buffer.from('with credentials');
        assert.deepEqual(await echo(stream, bytes), bytes);
      } finally {
        stream.destroy();
      }
      await assert.rejects(webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://127.0.0.1:${proxyPort}`) }).dial(5_000), (err: unknown) =>
        isFerryError(err, 'FERRY_CONNECT_FAILED') && err.message === `the proxy at http://127.0.0.1:${proxyPort}/ wants credentials (407): give them in --proxy http://user:pass@host:port`);
      await assert.rejects(webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://dev:wrongsecret@127.0.0.1:${proxyPort}`) }).dial(5_000), (err: unknown) =>
        isFerryError(err, 'FERRY_CONNECT_FAILED') && /refused the credentials/.test(err.message) && !err.message.includes('wrongsecret'));
    });

    test('a proxy that may not CONNECT to the port: 403 in words', async () => {
      const proxyPort = await startTinyproxy(suite, server.port + 1 > 65535 ? 1 : server.port + 1);
      await assert.rejects(webSocketDialer(endpoint(server.port), { tlsPin: server.pin, proxy: new URL(`http://127.0.0.1:${proxyPort}`) }).dial(5_000), (err: unknown) =>
        isFerryError(err, 'FERRY_CONNECT_FAILED') && /refuses to connect to 127\.0\.0\.1:\d+ \(403\)/.test(err.message));
    });
  });
});
