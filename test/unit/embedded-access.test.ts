// What a pushed key may do on the built-in server (pure): its logins, its forward targets
// with the device's own rules, and the file events read from sftp-server's log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleLogin, forwardRefusal, loginRefusal } from '../../src/agent/embedded/access.ts';
import { DEFAULT_FORWARD_RULES } from '../../src/agent/embedded/forward-policy.ts';
import { sftpLogReader, type FileEvent } from '../../src/agent/embedded/sftp-log.ts';
import type { AuthorizedKey } from '../../src/protocol/authorized-keys.ts';

const key = (o: Partial<AuthorizedKey>): AuthorizedKey => ({ user: 'alice', line: 'ssh-ed25519 AAAA', logins: ['*'], forwards: ['*'], roles: [], ...o });

test('logins: listed names and * pass; another name is refused naming the roles and what they allow', () => {
  assert.equal(loginRefusal(key({ logins: ['pi'] }), 'pi'), null);
  assert.equal(loginRefusal(key({ logins: ['*'] }), 'root'), null);
  assert.equal(loginRefusal(key({ logins: ['pi', 'deploy'], roles: ['ops', 'viewer'] }), 'root'),
    "ferry: operator 'alice' may not log in as 'root' on this device: roles ops, viewer allow logins only as pi, deploy");
  assert.match(loginRefusal(key({ logins: [] }), 'pi')!, /the relay's list for this key allows logins as nobody/);
});

test('console logins get the operator\'s own grant from the list: any of their keys that allows the login, else refused naming the rule', () => {
  const keys = [key({ user: 'alice', logins: ['pi'], roles: ['ops'] }), key({ user: 'alice', logins: ['pi'], roles: ['ops'] }), key({ user: 'root-ops', logins: ['*'] })];
  assert.deepEqual(consoleLogin(keys, 'alice', 'pi'), { refusal: null });
  assert.deepEqual(consoleLogin(keys, 'root-ops', 'root'), { refusal: null });
  assert.equal(consoleLogin(keys, 'alice', 'root').refusal, "ferry: operator 'alice' may not log in as 'root' on this device: role ops allows logins only as pi");
  assert.match(consoleLogin(keys, 'mallory', 'pi').refusal!, /operator 'mallory' has no key in this device's list from the relay/);
  assert.match(consoleLogin([], 'alice', 'pi').refusal!, /no key in this device's list/);
});

test('forwards: both the key\'s targets and the device\'s rules must allow; * leaves it to the device', () => {
  const narrow = key({ forwards: ['127.0.0.1:8080', '10.0.0.0/24:443'], roles: ['tunnels'] });
  assert.equal(forwardRefusal(narrow, DEFAULT_FORWARD_RULES, '127.0.0.1', 8080), null);
  assert.match(forwardRefusal(narrow, DEFAULT_FORWARD_RULES, '127.0.0.1', 8081)!, /^127\.0\.0\.1:8081 is not a forward target of operator 'alice' on this device \(role tunnels: 127\.0\.0\.1:8080, 10\.0\.0\.0\/24:443\)$/);
  assert.match(forwardRefusal(narrow, DEFAULT_FORWARD_RULES, '10.0.0.7', 443)!, /forwarding allowlist/, 'the key allows it, the device does not');
  assert.equal(forwardRefusal(narrow, [{ host: '10.0.0.7', port: 443 }], '10.0.0.7', 443), null);
  assert.equal(forwardRefusal(key({ forwards: ['*'] }), DEFAULT_FORWARD_RULES, 'localhost', 22), null);
  assert.match(forwardRefusal(key({ forwards: ['*'] }), DEFAULT_FORWARD_RULES, '127.0.0.2', 22)!, /allowlist/);
  assert.match(forwardRefusal(key({ forwards: [] }), DEFAULT_FORWARD_RULES, '127.0.0.1', 22)!, /: none\)$/);
  assert.match(forwardRefusal(key({ forwards: ['not a target'] }), DEFAULT_FORWARD_RULES, '127.0.0.1', 22)!, /not a forward target/, 'an unparsable target allows nothing');
});

test('sftp-server\'s log: a file event per close, write or read with its bytes; other lines and split chunks are handled', () => {
  const events: FileEvent[] = [];
  const other: string[] = [];
  const r = sftpLogReader((e) => events.push(e), (l) => other.push(l));
  const log = [
    'session opened for local user pi from [UNKNOWN]',
    'open "/home/pi/up.bin" flags WRITE,CREATE,TRUNCATE mode 0644',
    'close "/home/pi/up.bin" bytes read 0 written 1048576',
    'open "/home/pi/up.bin" flags READ mode 0666',
    'close "/home/pi/up.bin" bytes read 1048576 written 0',
    'open "/home/pi/empty" flags WRITE,CREATE,TRUNCATE mode 0644',
    'close "/home/pi/empty" bytes read 0 written 0',
    'opendir "/home/pi"', 'remove name "/home/pi/x"',
  ].map((l) => `${l}\r\n`).join('');
  // Fed in odd pieces, as a pipe delivers it.
  for (let i = 0; i < log.length; i += 7) r.push(Buffer.from(log.slice(i, i + 7)));
  assert.deepEqual(events, [
    { path: '/home/pi/up.bin', op: 'write', bytes: 1048576 },
    { path: '/home/pi/up.bin', op: 'read', bytes: 1048576 },
    { path: '/home/pi/empty', op: 'write', bytes: 0 },
  ]);
  assert.deepEqual(other, ['session opened for local user pi from [UNKNOWN]', 'opendir "/home/pi"', 'remove name "/home/pi/x"']);
});
