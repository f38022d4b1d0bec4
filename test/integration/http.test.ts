/**
 * The relay's HTTPS listener (issue #11): the self-signed certificate and a given one, plain
 * HTTP only on loopback, /healthz, /metrics following the fleet, the security headers on
 * every response, the body limit, and stop closing it. Real HTTPS requests from node, with
 * the relay's certificate pinned as the only CA.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FerryError } from '../../src/common/errors.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { silentLogger } from '../../src/common/log.ts';
import { startRelay, type Relay } from '../../src/relay/relay.ts';
import { registerHealthRoutes } from '../../src/relay/http/health-routes.ts';
import { createHttpApp } from '../../src/relay/http/server.ts';
import type { RelaySources } from '../../src/relay/http/sources.ts';
import { selfSignedCertPath, selfSignedKeyPath } from '../../src/relay/http/tls-cert.ts';
import { RELAY_DEFAULTS } from '../../src/relay/config.ts';
import { eventually, fileCleanup, makeKey, run, tempDir } from '../helpers/env.ts';
import { FERRY, spawnFerry, startFixture, testLogger, testRelayConfig, type Fixture } from '../helpers/fixture.ts';
import { ssh } from '../helpers/ssh-client.ts';

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One HTTPS request to 127.0.0.1:port that trusts only `ca`. */
function get(port: number, path: string, ca: string, opts: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', ca, headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The same over plain HTTP. */
function plainGet(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject).end();
  });
}

/** Parses Prometheus text exposition format strictly enough to fail on anything malformed; returns sample name{labels} → value. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|[nN][aA][nN]|[+-]?[iI][nN][fF])( \d+)?$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    // Values are read as Go's ParseFloat reads them: NaN and Inf in any case (prom-client
    // writes an event-loop mean with no samples yet as 'Nan').
    const v = m[3]!.toLowerCase();
    samples.set(m[1]! + (m[2] ?? ''), v === 'nan' ? NaN : v.endsWith('inf') ? (v.startsWith('-') ? -Infinity : Infinity) : Number(m[3]));
  }
  for (const name of ['ferry_devices_online', 'ferry_channel_opens_total', 'nodejs_eventloop_lag_seconds']) assert.ok(types.has(name), `no # TYPE for ${name}`);
  return samples;
}

const SECURITY_HEADERS: Record<string, RegExp> = {
  'x-content-type-options': /^nosniff$/,
  'x-frame-options': /^DENY$/,
  'content-security-policy': /default-src 'none'.*frame-ancestors 'none'/,
  'strict-transport-security': /^max-age=\d{7,}/,
  'referrer-policy': /^no-referrer$/,
};

function assertSecurityHeaders(r: Reply, what: string): void {
  for (const [name, want] of Object.entries(SECURITY_HEADERS)) assert.match(String(r.headers[name] ?? ''), want, `${name} on ${what}`);
}

describe('the relay over HTTPS with its self-signed certificate', () => {
  let f: Fixture;
  let ca: string;
  let port: number;
  const suite = fileCleanup(after);
  before(async () => {
    f = await startFixture(suite, { httpListen: { host: '127.0.0.1', port: 0 } });
    ca = readFileSync(selfSignedCertPath(join(f.dir, 'relay')), 'utf8');
    port = f.relay.http!.address.port;
  });
  const metric = async (name: string) => parsePrometheus((await get(port, '/metrics', ca)).body).get(name);

  test('the certificate is in the data dir (key mode 0600), names 127.0.0.1 and localhost, and its fingerprint is the one reported', () => {
    const dataDir = join(f.dir, 'relay');
    assert.equal(statSync(selfSignedKeyPath(dataDir)).mode & 0o777, 0o600);
    const cert = new X509Certificate(ca);
    assert.equal(f.relay.http!.certFingerprint, cert.fingerprint256);
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    assert.equal(f.relay.http!.url, `https://127.0.0.1:${port}`);
  });

  test('/healthz answers 200 with ok, version, uptime, devices online and the store', async () => {
    const r = await get(port, '/healthz', ca);
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const h = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual(Object.keys(h).sort(), ['devicesOnline', 'ok', 'store', 'uptimeSeconds', 'version']);
    assert.equal(h.ok, true);
    assert.equal(h.store, 'ok');
    assert.match(String(h.version), /^\d+\.\d+\.\d+/);
    assert.equal(typeof h.uptimeSeconds, 'number');
  });

  test('/metrics is Prometheus text; ferry_devices_online follows a device going online and offline; a reach counts its channel and bytes', async () => {
    const r = await get(port, '/metrics', ca);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const before = parsePrometheus(r.body);
    assert.equal(before.get('ferry_devices_online'), 0);
    for (const name of ['ferry_ssh_handshakes_running{lane="device"}', 'ferry_ssh_handshakes_queued{lane="interactive"}', 'ferry_channel_open_failures_total', 'ferry_reaches_live', 'ferry_reach_bytes_total{direction="in"}', 'process_resident_memory_bytes']) {
      assert.ok(before.has(name), `no ${name}`);
    }
    const agent = await f.device('cam');
    assert.equal(await metric('ferry_devices_online'), 1);
    assert.equal((JSON.parse((await get(port, '/healthz', ca)).body) as { devicesOnline: number }).devicesOnline, 1);
    const out = await ssh(f.admin, ['cam', 'head -c 100000 /dev/zero']);
    assert.equal(out.code, 0, out.stderr);
    const after = parsePrometheus((await get(port, '/metrics', ca)).body);
    assert.equal(after.get('ferry_channel_opens_total'), 1);
    assert.equal(after.get('ferry_reaches_total'), 1);
    assert.ok(after.get('ferry_reach_bytes_total{direction="out"}')! > 100_000, `bytes out ${after.get('ferry_reach_bytes_total{direction="out"}')}`);
    await agent.stop();
    await eventually(async () => (await metric('ferry_devices_online')) === 0, 10_000, 'ferry_devices_online 0 after the agent stopped');
  });

  test('every response carries the security headers, errors included, and errors are JSON with a stable code and no stack', async () => {
    assertSecurityHeaders(await get(port, '/healthz', ca), '/healthz');
    assertSecurityHeaders(await get(port, '/metrics', ca), '/metrics');
    const missingPath = await get(port, '/nope', ca);
    assert.equal(missingPath.status, 404);
    assertSecurityHeaders(missingPath, '404');
    assert.equal((JSON.parse(missingPath.body) as { error: { code: string } }).error.code, 'FERRY_NOT_FOUND');
    assert.doesNotMatch(missingPath.body, /\bat .*:\d+:\d+/);
  });

  test('a body over the limit is refused with 413 before it is read', async () => {
    const limit = RELAY_DEFAULTS.httpBodyLimitBytes;
    const big = await get(port, '/healthz', ca, { method: 'POST', body: Buffer.alloc(limit + 1, 'a'), headers: { 'content-type': 'application/json' } });
    assert.equal(big.status, 413, big.body);
    assertSecurityHeaders(big, '413');
    const e = JSON.parse(big.body) as { error: { code: string; message: string } };
    assert.equal(e.error.code, 'FERRY_TOO_LARGE');
    assert.match(e.error.message, new RegExp(`larger than ${limit} bytes`));
    // At the limit, the request goes on to routing (no POST route here yet: 404).
    assert.equal((await get(port, '/healthz', ca, { method: 'POST', body: Buffer.alloc(limit, 'a'), headers: { 'content-type': 'text/plain' } })).status, 404);
  });
});

describe('certificates across restarts', () => {
  const suite = fileCleanup(after);

  test('the self-signed certificate is reused on the second start (same fingerprint) and stop() closes the listener', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const config = testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 } });
    const first = await startRelay(config, { log: testLogger('relay') });
    const firstPrint = first.http!.certFingerprint;
    const firstPort = first.http!.address.port;
    await first.stop();
    await assert.rejects(new Promise((resolve, reject) => connect(firstPort, '127.0.0.1').on('connect', resolve).on('error', reject)), /ECONNREFUSED/);
    const second = await startRelay(config, { log: testLogger('relay') });
    suite.after(() => second.stop());
    assert.match(firstPrint ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(second.http!.certFingerprint, firstPrint);
    const ca = readFileSync(selfSignedCertPath(join(dir, 'relay')), 'utf8');
    assert.equal((await get(second.http!.address.port, '/healthz', ca)).status, 200);
  });

  test('a given certificate and key are used, and no self-signed one is made', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const certFile = join(dir, 'given.pem');
    const keyFile = join(dir, 'given.key');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=given', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const given = readFileSync(certFile, 'utf8');
    const relay: Relay = await startRelay(testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 }, tlsCertFile: certFile, tlsKeyFile: keyFile }), { log: testLogger('relay') });
    suite.after(() => relay.stop());
    assert.equal(relay.http!.certFingerprint, new X509Certificate(given).fingerprint256);
    const r = await get(relay.http!.address.port, '/healthz', given);
    assert.equal(r.status, 200);
    assert.throws(() => statSync(selfSignedCertPath(join(dir, 'relay'))), /ENOENT/);
  });

  test('a key that does not belong to the certificate stops the relay at start with a clear error', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    for (const name of ['a', 'b']) {
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=${name}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    await assert.rejects(startRelay(testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 }, tlsCertFile: join(dir, 'a.pem'), tlsKeyFile: join(dir, 'b.key') }), { log: silentLogger() }),
      (err: Error & { code?: string }) => err.code === 'FERRY_CONFIG_INVALID' && /are not a usable HTTPS certificate and key/.test(err.message));
    // The failed start released the data dir: a relay with the right pair starts on it.
    const ok = await startRelay(testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 }, tlsCertFile: join(dir, 'a.pem'), tlsKeyFile: join(dir, 'a.key') }), { log: silentLogger() });
    await ok.stop();
  });
});

describe('the listener\'s limits', () => {
  test('a client that does not finish its headers is dropped at the headers timeout, and connections over the limit are refused', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const relay = await startRelay(testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 }, httpHeadersTimeoutMs: 1_000, httpRequestTimeoutMs: 2_000, httpMaxConnections: 1, maxConnections: 1 }), { log: testLogger('relay') });
    t.after(() => relay.stop());
    const port = relay.http!.address.port;
    const ca = readFileSync(selfSignedCertPath(join(dir, 'relay')), 'utf8');
    const slow = (): Promise<{ answer: string; afterMs: number }> => new Promise((resolve, reject) => {
      const started = Date.now();
      let answer = '';
      const s = tlsConnect({ host: '127.0.0.1', port, ca }, () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      s.setEncoding('utf8');
      s.on('data', (d: string) => { answer += d; });
      s.on('error', reject);
      s.on('close', () => resolve({ answer, afterMs: Date.now() - started }));
    });
    const first = slow();
    const second = slow();
    // The listener holds httpMaxConnections plus maxConnections (the agents' wss links' share):
    // both slots are taken (the TLS handshakes are done when the headers start); a third connection is closed at accept.
    await eventually(() => new Promise<boolean>((r) => relay.http!.app.server.getConnections((_e, n) => r(n === 2))), 5_000, 'two connections held');
    const third = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca });
      s.on('secureConnect', () => resolve('connected'));
      s.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      s.on('close', () => resolve('closed'));
    });
    assert.notEqual(third, 'connected');
    for (const r of await Promise.all([first, second])) {
      assert.match(r.answer, /^HTTP\/1\.1 408 /);
      assert.ok(r.afterMs >= 900 && r.afterMs < 4_000, `dropped after ${r.afterMs} ms`);
    }
  });
});

describe('TLS handshakes at once', () => {
  test('one address may run so many at once; past that a connection is reset at accept, and a finished or abandoned handshake frees its place', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const relay = await startRelay(testRelayConfig(join(dir, 'relay'), [admin.pub], { httpListen: { host: '127.0.0.1', port: 0 } }), { log: testLogger('relay') });
    t.after(() => relay.stop());
    const port = relay.http!.address.port;
    const ca = readFileSync(selfSignedCertPath(join(dir, 'relay')), 'utf8');
    // Silent TCP connections: each has started no handshake yet, but holds a place until it does (or times out).
    const silent: Socket[] = [];
    t.after(() => { for (const s of silent) s.destroy(); });
    for (let i = 0; i < LIMITS.httpTlsHandshakesPerAddress; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((resolve) => s.once('connect', resolve));
      silent.push(s);
    }
    const handshake = () => new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca });
      s.on('secureConnect', () => { s.destroy(); resolve('done'); });
      s.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
    });
    assert.match(await handshake(), /ECONNRESET|socket hang up|disconnected/, 'the address is over its share: reset before any TLS');
    silent.pop()!.destroy();
    assert.equal(await eventually(async () => (await handshake()) === 'done' || null, 5_000, 'a place to free'), true);
    for (const s of silent.splice(0)) s.destroy();
    // A finished handshake gives its place back at once, though its connection stays open.
    const open: Socket[] = [];
    t.after(() => { for (const s of open) s.destroy(); });
    for (let i = 0; i <= LIMITS.httpTlsHandshakesPerAddress; i++) {
      const s = await eventually(() => new Promise<Socket | null>((resolve) => {
        const c = tlsConnect({ host: '127.0.0.1', port, ca });
        c.on('secureConnect', () => resolve(c));
        c.on('error', () => resolve(null));
      }), 5_000, `handshake ${i + 1} with ${i} finished connections open`);
      open.push(s);
    }
  });
});

describe('ferry relay on the command line', () => {
  test('prints the console URL and the certificate fingerprint; SIGTERM stops it', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const p = spawnFerry(t, ['relay', '--data-dir', join(dir, 'relay'), '--ssh-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--admin-key', `${admin.path}.pub`]);
    const [, url, port] = await p.waitFor(/console (https:\/\/127\.0\.0\.1:(\d+)) \(listening on 127\.0\.0\.1:\d+\)/);
    const [, print] = await p.waitFor(/https certificate SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/);
    await p.waitFor(/"msg":"http listening"/);
    const ca = readFileSync(selfSignedCertPath(join(dir, 'relay')), 'utf8');
    assert.equal(print, new X509Certificate(ca).fingerprint256);
    assert.equal((await get(Number(port), '/healthz', ca)).status, 200, url);
    assert.equal(await p.stop('SIGTERM'), 0);
  });

  test('--http-plain is refused off loopback (exit 2, no stack trace)', async (t) => {
    const dir = tempDir(t);
    const r = await run(process.execPath, [FERRY, 'relay', '--data-dir', join(dir, 'relay'), '--ssh-listen', '127.0.0.1:0', '--http-listen', '0.0.0.0:0', '--http-plain'], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--http-plain is refused on 0\.0\.0\.0: .*TLS reverse proxy/);
    assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/);
  });

  test('--http-plain on loopback serves plain HTTP, without HSTS, and warns', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const p = spawnFerry(t, ['relay', '--data-dir', join(dir, 'relay'), '--ssh-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--http-plain', '--admin-key', `${admin.path}.pub`]);
    const [, port] = await p.waitFor(/console http:\/\/127\.0\.0\.1:(\d+) \(listening on 127\.0\.0\.1:\d+, plain HTTP\)/);
    await p.waitFor(/serving plain HTTP \(--http-plain\): this must sit behind a TLS reverse proxy/);
    const r = await plainGet(Number(port), '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['strict-transport-security'], undefined);
    assert.throws(() => statSync(selfSignedCertPath(join(dir, 'relay'))), /ENOENT/);
  });

  test('without openssl the relay says to install it or give --tls-cert', async (t) => {
    const dir = tempDir(t);
    const admin = makeKey(dir, 'admin');
    const r = await run(process.execPath, [FERRY, 'relay', '--data-dir', join(dir, 'relay'), '--ssh-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--admin-key', `${admin.path}.pub`], { timeoutMs: 20_000, env: { ...process.env, PATH: dir } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the openssl program is needed to make the self-signed HTTPS certificate and was not found: install it \(apt-get install openssl\), or give --tls-cert and --tls-key/);
  });
});

describe('errors from routes', () => {
  test('a FerryError keeps its code and gets its status; any other error is 500 FERRY_INTERNAL with no message or stack from inside', async (t) => {
    const app = createHttpApp({ limits: RELAY_DEFAULTS, tls: null, log: silentLogger() });
    app.get('/denied', async () => { throw new FerryError('FERRY_PERMISSION_DENIED', "'bob' may not do that"); });
    app.get('/broken', async () => { throw new TypeError('secret internals at /srv/x.js'); });
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => app.close());
    const port = (app.server.address() as { port: number }).port;
    const denied = await plainGet(port, '/denied');
    assert.equal(denied.status, 403);
    assert.deepEqual(JSON.parse(denied.body), { error: { code: 'FERRY_PERMISSION_DENIED', message: "'bob' may not do that" } });
    const broken = await plainGet(port, '/broken');
    assert.equal(broken.status, 500);
    assert.equal((JSON.parse(broken.body) as { error: { code: string } }).error.code, 'FERRY_INTERNAL');
    assert.doesNotMatch(broken.body, /secret|TypeError|\.js/);
    assert.equal(broken.headers['x-content-type-options'], 'nosniff');
  });
});

describe('/healthz when the store is not usable', () => {
  test('answers 503 with ok false and store unreachable', async (t) => {
    const sources: RelaySources = {
      startedAt: Date.now(), now: () => Date.now(), devicesOnline: () => 0, sshConnections: () => 0,
      handshakes: () => ({ device: { running: 0, waiting: 0 }, interactive: { running: 0, waiting: 0 } }),
      channelStats: { opened: 0, failed: 0 }, sessions: { reaches: () => [], connections: () => [], totals: () => ({ reaches: 0, bytesIn: 0, bytesOut: 0 }) },
      consoles: { stats: () => ({ live: 0, detached: 0, started: 0, recordingBytes: 0, outputHeld: 0 }) },
      storeProblem: () => 'SQLITE_IOERR: disk I/O error',
    };
    const app = createHttpApp({ limits: RELAY_DEFAULTS, tls: null, log: silentLogger() });
    registerHealthRoutes(app, sources);
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => app.close());
    const r = await plainGet((app.server.address() as { port: number }).port, '/healthz');
    assert.equal(r.status, 503);
    const h = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual([h.ok, h.store, h.devicesOnline], [false, 'unreachable', 0]);
    assert.doesNotMatch(r.body, /SQLITE_IOERR/);
  });
});
