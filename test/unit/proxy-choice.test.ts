// Covers src/agent/proxy-choice.ts: --proxy over HTTPS_PROXY, NO_PROXY forms, TCP endpoints never proxied, and problems that never show a password.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bypassesProxy, proxyFor, proxySettingsFrom, type ProxySettings } from '../../src/agent/proxy-choice.ts';
import type { RelayEndpoint } from '../../src/protocol/relay-endpoint.ts';

const wss = (host: string, port = 443): RelayEndpoint => ({ transport: 'wss', host, port, path: '/v1/agent' });
const tcp: RelayEndpoint = { transport: 'tcp', host: 'relay.example.com', port: 2222 };
const settings = (s: Partial<ProxySettings>): ProxySettings => ({ flag: null, httpsProxy: null, noProxy: null, ...s });
const chosen = (e: RelayEndpoint, s: ProxySettings) => {
  const c = proxyFor(e, s);
  if (c === null) return null;
  if ('problem' in c) return c;
  return { href: c.url.href, from: c.from };
};

describe('proxy choice', () => {
  test('reads the lower-case variables first and treats empty ones as unset', () => {
    assert.deepEqual(proxySettingsFrom(null, { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1', NO_PROXY: 'a', no_proxy: '' }),
      { flag: null, httpsProxy: 'http://lower:1', noProxy: 'a' });
    assert.deepEqual(proxySettingsFrom('  ', { HTTPS_PROXY: '' }), { flag: null, httpsProxy: null, noProxy: null });
    // ALL_PROXY is deliberately not read (it usually names a SOCKS proxy).
    assert.deepEqual(proxySettingsFrom(null, { ALL_PROXY: 'socks5://p:1080' }), { flag: null, httpsProxy: null, noProxy: null });
  });

  test('a TCP endpoint never uses a proxy, whatever is set', () => {
    assert.equal(chosen(tcp, settings({ flag: 'http://p:3128', httpsProxy: 'http://q:3128' })), null);
  });

  test('--proxy wins over HTTPS_PROXY and is not overridden by NO_PROXY', () => {
    assert.deepEqual(chosen(wss('relay.example.com'), settings({ flag: 'http://p:3128', httpsProxy: 'http://q:3128', noProxy: '*' })), { href: 'http://p:3128/', from: '--proxy' });
  });

  test('HTTPS_PROXY applies to wss endpoints unless NO_PROXY covers them; no scheme means http://', () => {
    assert.deepEqual(chosen(wss('relay.example.com'), settings({ httpsProxy: 'proxy.lan:3128' })), { href: 'http://proxy.lan:3128/', from: 'HTTPS_PROXY' });
    assert.equal(chosen(wss('relay.example.com'), settings({ httpsProxy: 'http://q:3128', noProxy: 'example.com' })), null);
    assert.equal(chosen(wss('relay.example.com'), settings({})), null);
  });

  test('NO_PROXY: *, domain suffixes with or without a dot, HOST:PORT, IP literals', () => {
    assert.equal(bypassesProxy('*', 'anything', 443), true);
    assert.equal(bypassesProxy('example.com', 'example.com', 443), true);
    assert.equal(bypassesProxy('example.com', 'relay.example.com', 443), true);
    assert.equal(bypassesProxy('.example.com', 'relay.example.com', 443), true);
    assert.equal(bypassesProxy('.example.com', 'example.com', 443), true);
    assert.equal(bypassesProxy('*.example.com', 'a.b.example.com', 443), true);
    assert.equal(bypassesProxy('example.com', 'badexample.com', 443), false);
    assert.equal(bypassesProxy('EXAMPLE.com', 'Relay.example.COM.', 443), true);
    assert.equal(bypassesProxy('relay.example.com:8443', 'relay.example.com', 8443), true);
    assert.equal(bypassesProxy('relay.example.com:8443', 'relay.example.com', 443), false);
    assert.equal(bypassesProxy('10.0.0.1', '10.0.0.1', 443), true);
    assert.equal(bypassesProxy('0.0.1', '10.0.0.1', 443), false);
    assert.equal(bypassesProxy('::1', '::1', 443), true);
    assert.equal(bypassesProxy('[::1]:443', '::1', 443), true);
    assert.equal(bypassesProxy('[2001:db8::1]', '2001:db8::1', 443), true);
    assert.equal(bypassesProxy(' a.test , b.test ', 'x.b.test', 443), true);
    assert.equal(bypassesProxy('a.test b.test', 'b.test', 443), true);
    assert.equal(bypassesProxy('', 'a.test', 443), false);
    assert.equal(bypassesProxy(null, 'a.test', 443), false);
  });

  test('a proxy that is not http:// is a problem in words, without its password', () => {
    for (const [s, from] of [[settings({ flag: 'https://u:secret@p:3128' }), '--proxy'], [settings({ httpsProxy: 'socks5://u:secret@p:1080' }), 'HTTPS_PROXY']] as const) {
      const c = proxyFor(wss('relay.example.com'), s);
      assert.ok(c !== null && 'problem' in c);
      assert.match(c.problem, new RegExp(`^${from}.*only to HTTP proxies`));
      assert.doesNotMatch(c.problem, /secret/);
    }
    const bad = proxyFor(wss('r.test'), settings({ flag: 'http://u:secret@' }));
    assert.ok(bad !== null && 'problem' in bad);
    assert.doesNotMatch(bad.problem, /secret/);
  });

  test('credentials in the URL are kept for the proxy', () => {
    const c = proxyFor(wss('r.test'), settings({ flag: 'http://user:p%40ss@p:3128' }));
    assert.ok(c !== null && !('problem' in c));
    assert.equal(c.url.username, 'user');
    assert.equal(decodeURIComponent(c.url.password), 'p@ss');
  });
});
