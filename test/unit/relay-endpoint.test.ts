// Covers src/protocol/relay-endpoint.ts: HOST:PORT and wss:// endpoints, https:// read as wss://, the agent path below a base, lists, and refusals in words.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agentEndpointOf, formatRelayEndpoint, parseRelayEndpoint, parseRelayEndpoints } from '../../src/protocol/relay-endpoint.ts';

describe('relay endpoints', () => {
  test('HOST:PORT is SSH over TCP, with IPv6 in brackets', () => {
    assert.deepEqual(parseRelayEndpoint('relay.example.com:2222'), { transport: 'tcp', host: 'relay.example.com', port: 2222 });
    assert.deepEqual(parseRelayEndpoint('[2001:db8::1]:22'), { transport: 'tcp', host: '2001:db8::1', port: 22 });
    assert.deepEqual(parseRelayEndpoint('ssh://relay.example.com:2222'), { transport: 'tcp', host: 'relay.example.com', port: 2222 });
  });

  test('wss:// and https:// name the relay; the link is at /v1/agent below the path given', () => {
    const at = (path: string, port = 443) => ({ transport: 'wss', host: 'relay.example.com', port, path });
    assert.deepEqual(parseRelayEndpoint('wss://relay.example.com/'), at('/v1/agent'));
    assert.deepEqual(parseRelayEndpoint('wss://relay.example.com'), at('/v1/agent'));
    assert.deepEqual(parseRelayEndpoint('https://relay.example.com:8443/'), at('/v1/agent', 8443));
    assert.deepEqual(parseRelayEndpoint('wss://relay.example.com/v1/agent'), at('/v1/agent'));
    assert.deepEqual(parseRelayEndpoint('wss://relay.example.com/ferry/'), at('/ferry/v1/agent'));
    assert.deepEqual(parseRelayEndpoint('WSS://Relay.Example.com/'), { ...at('/v1/agent'), host: 'relay.example.com' });
    assert.deepEqual(parseRelayEndpoint('wss://[2001:db8::1]:8443/'), { transport: 'wss', host: '2001:db8::1', port: 8443, path: '/v1/agent' });
  });

  test('an endpoint reads back as written by formatRelayEndpoint', () => {
    for (const text of ['relay.example.com:2222', '[2001:db8::1]:22', 'wss://relay.example.com/v1/agent', 'wss://relay.example.com:8443/ferry/v1/agent', 'wss://[2001:db8::1]:8443/v1/agent']) {
      const e = parseRelayEndpoint(text);
      assert.ok(!('problem' in e), text);
      assert.equal(formatRelayEndpoint(e), text);
    }
  });

  test('what is wrong is said in words', () => {
    const problem = (text: string) => { const e = parseRelayEndpoint(text); return 'problem' in e ? e.problem : null; };
    assert.match(problem('relay.example.com')!, /must be HOST:PORT \(SSH\) or wss:\/\/HOST/);
    assert.match(problem('ws://relay.example.com/')!, /plain ws:\/\/: the agent links only over TLS/);
    assert.match(problem('http://relay.example.com/')!, /plain http:\/\//);
    assert.match(problem('ftp://relay.example.com/')!, /scheme ftp:\/\//);
    assert.match(problem('wss://user:pw@relay.example.com/')!, /carries a user, query or fragment/);
    assert.match(problem('wss://relay.example.com/?x=1')!, /carries a user, query or fragment/);
    assert.match(problem('relay:99999')!, /must be HOST:PORT/);
    assert.match(problem('wss://relay.example.com:99999/')!, /not a valid URL/);
  });

  test('a list keeps its order, drops repeats and is bounded', () => {
    assert.deepEqual(parseRelayEndpoints('relay.example.com:2222, wss://relay.example.com/ ,relay.example.com:2222'), [
      { transport: 'tcp', host: 'relay.example.com', port: 2222 },
      { transport: 'wss', host: 'relay.example.com', port: 443, path: '/v1/agent' },
    ]);
    assert.match((parseRelayEndpoints(' , ') as { problem: string }).problem, /no relay endpoint given/);
    assert.match((parseRelayEndpoints(Array.from({ length: 9 }, (_, i) => `r${i}:22`).join(',')) as { problem: string }).problem, /at most 8/);
    assert.match((parseRelayEndpoints('relay:22,ws://x/') as { problem: string }).problem, /plain ws:\/\//);
  });

  test('host names with underscores and IPv6 literals with a zone, as the old HOST:PORT parser took them; credentials are never repeated back', () => {
    assert.deepEqual(parseRelayEndpoint('ferry_relay:2222'), { transport: 'tcp', host: 'ferry_relay', port: 2222 });
    assert.deepEqual(parseRelayEndpoint('[fe80::1%eth0]:2222'), { transport: 'tcp', host: 'fe80::1%eth0', port: 2222 });
    assert.deepEqual(parseRelayEndpoint('wss://relay_1:8443/'), { transport: 'wss', host: 'relay_1', port: 8443, path: '/v1/agent' });
    const refused = parseRelayEndpoint('wss://user:s3cret@relay.example.com/') as { problem: string };
    assert.match(refused.problem, /carries a user, query or fragment/);
    assert.doesNotMatch(refused.problem, /s3cret/);
  });

  test('the agent endpoint of a console URL', () => {
    assert.deepEqual(agentEndpointOf('https://relay.example.com:8443'), { transport: 'wss', host: 'relay.example.com', port: 8443, path: '/v1/agent' });
    assert.deepEqual(agentEndpointOf('https://relay.example.com/ferry'), { transport: 'wss', host: 'relay.example.com', port: 443, path: '/ferry/v1/agent' });
    assert.equal(agentEndpointOf('http://127.0.0.1:8080'), null, 'plain HTTP has no agent endpoint');
  });
});
