/** The HTTP listener's flags (issue #11): --http-listen, --tls-cert/--tls-key, --http-plain, --public-url. */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { relayConfigFromArgs } from '../../src/cli/relay-command.ts';
import { isLoopback, publicUrlProblem } from '../../src/relay/config.ts';

const relay = (...args: string[]) => relayConfigFromArgs(['--data-dir', '/tmp/x', ...args], {}).config;
const problems = (...args: string[]) => {
  try {
    relay(...args);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

describe('relay HTTP flags', () => {
  test('by default HTTPS on 0.0.0.0:8443 with a self-signed certificate and the URL derived from the public address', () => {
    const c = relay();
    assert.deepEqual(c.httpListen, { host: '0.0.0.0', port: 8443 });
    assert.deepEqual([c.tlsCertFile, c.tlsKeyFile, c.httpPlain, c.publicUrl], [null, null, false, null]);
    assert.equal(c.httpBodyLimitBytes, 64 * 1024);
  });

  test("--http-listen takes HOST:PORT (port 0 included), 'off' turns it off, and anything else is refused", () => {
    assert.deepEqual(relay('--http-listen', '127.0.0.1:0').httpListen, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(relay('--http-listen', '[::1]:9443').httpListen, { host: '::1', port: 9443 });
    assert.equal(relay('--http-listen', 'off').httpListen, null);
    assert.equal(relayConfigFromArgs(['--data-dir', '/tmp/x'], { FERRY_HTTP_LISTEN: 'off' }).config.httpListen, null);
    assert.match(problems('--http-listen', '8443'), /--http-listen '8443' must be HOST:PORT/);
  });

  test('--trusted-proxy takes IPs and CIDR ranges, comma-separated; --agent-endpoints takes the endpoints tokens carry', () => {
    assert.deepEqual([relay().trustedProxies, relay().agentEndpoints], [[], null]);
    assert.deepEqual(relay('--trusted-proxy', '10.0.0.5, 192.168.0.0/16,::1').trustedProxies, ['10.0.0.5', '192.168.0.0/16', '::1']);
    assert.match(problems('--trusted-proxy', 'proxy.example.com'), /--trusted-proxy 'proxy.example.com' is not an IP address or a CIDR range/);
    assert.deepEqual(relay('--agent-endpoints', 'relay.example.com:2222,wss://relay.example.com/').agentEndpoints, ['relay.example.com:2222', 'wss://relay.example.com/']);
    assert.match(problems('--agent-endpoints', 'ws://relay.example.com/'), /--agent-endpoints: relay endpoint 'ws:\/\/relay.example.com\/' is plain ws:\/\/: the agent links only over TLS/);
  });

  test('--console-session-ttl: 12h by default, a duration from 1m to 7d', () => {
    assert.equal(relay().consoleSessionTtlMs, 12 * 3_600_000);
    assert.equal(relay('--console-session-ttl', '8h').consoleSessionTtlMs, 8 * 3_600_000);
    assert.match(problems('--console-session-ttl', '30s'), /--console-session-ttl must be from 1m to 7d/);
    assert.match(problems('--console-session-ttl', '8d'), /--console-session-ttl must be from 1m to 7d/);
    assert.match(problems('--console-session-ttl', 'soon'), /--console-session-ttl 'soon' is not a duration/);
  });

  test('--tls-cert and --tls-key go together', () => {
    const c = relay('--tls-cert', '/c.pem', '--tls-key', '/k.pem');
    assert.deepEqual([c.tlsCertFile, c.tlsKeyFile], ['/c.pem', '/k.pem']);
    assert.match(problems('--tls-cert', '/c.pem'), /--tls-cert and --tls-key go together/);
    assert.match(problems('--tls-key', '/k.pem'), /--tls-cert and --tls-key go together/);
  });

  test('--http-plain is refused unless --http-listen is on loopback, and with a certificate', () => {
    assert.match(problems('--http-plain'), /--http-plain is refused on 0\.0\.0\.0: .*behind a TLS reverse proxy/);
    assert.match(problems('--http-plain', '--http-listen', '192.168.1.5:8080'), /--http-plain is refused on 192\.168\.1\.5/);
    assert.equal(relay('--http-plain', '--http-listen', '127.0.0.1:8080').httpPlain, true);
    assert.equal(relay('--http-plain', '--http-listen', 'localhost:8080').httpPlain, true);
    assert.equal(relay('--http-plain', '--http-listen', '[::1]:8080').httpPlain, true);
    assert.match(problems('--http-plain', '--http-listen', '127.0.0.1:8080', '--tls-cert', '/c', '--tls-key', '/k'), /--http-plain serves plain HTTP, so --tls-cert/);
    // Off means nothing listens, so plain HTTP has nothing to expose.
    assert.equal(relay('--http-plain', '--http-listen', 'off').httpListen, null);
  });

  test('--public-url is an http(s) origin only', () => {
    assert.equal(relay('--public-url', 'https://relay.example.com').publicUrl, 'https://relay.example.com');
    assert.match(problems('--public-url', 'relay.example.com'), /--public-url 'relay.example.com' is not a URL/);
    assert.match(problems('--public-url', 'ftp://relay.example.com'), /must start with https:\/\//);
    assert.match(problems('--public-url', 'https://relay.example.com/console?x=1'), /no path, user, query or fragment/);
    assert.equal(publicUrlProblem('https://relay.example.com:9443/'), null);
  });

  test('every problem is reported at once', () => {
    const text = problems('--http-plain', '--tls-cert', '/c', '--public-url', 'nope');
    for (const want of [/go together/, /--http-plain serves plain HTTP/, /--http-plain is refused on 0\.0\.0\.0/, /--public-url 'nope'/]) assert.match(text, want);
  });

  test('loopback means 127.0.0.0/8, ::1 and localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '127.example.com', 'localhost.example.com']) assert.equal(isLoopback(h), false, h);
  });
});
