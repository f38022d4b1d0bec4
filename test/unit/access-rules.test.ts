// Covers src/protocol/access-rules.ts on tables of cases: device selectors, login items,
// forward targets (IPv4, IPv6, CIDR edges, names) and relay actions.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  actionAllowed, actionProblem, forwardAllowed, forwardTargetText, loginAllowed, loginProblem, parseAddress,
  parseForwardTarget, parseSelector, selectorMatches, type Action, type ForwardTarget, type Selector,
} from '../../src/protocol/access-rules.ts';

function selector(text: string): Selector {
  const s = parseSelector(text);
  assert.ok(!('problem' in s), `${text}: ${JSON.stringify(s)}`);
  return s;
}

function target(text: string): ForwardTarget {
  const t = parseForwardTarget(text);
  assert.ok(!('problem' in t), `${text}: ${JSON.stringify(t)}`);
  return t;
}

describe('device selectors', () => {
  const berlin = { site: 'berlin', env: 'prod' };
  const berlinDev = { site: 'berlin', env: 'dev' };
  const paris = { site: 'paris' };
  const none = {};
  // [selector, labels, matches]
  const cases: [string, Record<string, string>, boolean][] = [
    ['*', none, true],
    ['*', berlin, true],
    ['site=berlin', berlin, true],
    ['site=berlin', paris, false],
    ['site=berlin', none, false],
    ['site!=berlin', paris, true],
    ['site!=berlin', none, true],
    ['site!=berlin', berlin, false],
    ['site=berlin,env!=prod', berlinDev, true],
    ['site=berlin,env!=prod', berlin, false],
    ['site=berlin,env!=prod', paris, false],
    ['env', berlin, true],
    ['env', paris, false],
    ['!env', paris, true],
    ['!env', berlin, false],
    [' site = berlin , !env ', { site: 'berlin' }, true],
    ['site=', { site: '' }, true],
    ['site=', paris, false],
    // Values are compared exactly: case matters, as it does for labels.
    ['site=Berlin', berlin, false],
    // A label named like an Object.prototype member is still only a label.
    ['constructor', none, false],
    ['!constructor', none, true],
  ];
  for (const [text, labels, expected] of cases) {
    test(`${text} on ${JSON.stringify(labels)} → ${expected}`, () => {
      assert.equal(selectorMatches(selector(text), labels), expected);
    });
  }

  test('selectors are written back in one form', () => {
    assert.equal(selector(' site = berlin , !env ').text, 'site=berlin,!env');
    assert.equal(selector('*').text, '*');
    assert.deepEqual(selector('a=1,b!=2,c,!d').terms, [
      { op: 'eq', key: 'a', value: '1' }, { op: 'ne', key: 'b', value: '2' }, { op: 'has', key: 'c' }, { op: 'lacks', key: 'd' },
    ]);
  });

  const bad: [string, RegExp][] = [
    ['', /empty device selector/],
    ['  ', /empty device selector/],
    ['site=berlin,', /'' is not key=value/],
    ['Site=berlin', /'Site=berlin' is not key=value/],
    ['=berlin', /'=berlin' is not key=value/],
    ['!site=berlin', /'!site=berlin' is not key=value/],
    ['si te', /'si te' is not key=value/],
    ['-site', /'-site' is not key=value/],
  ];
  for (const [text, message] of bad) {
    test(`'${text}' is refused`, () => {
      const s = parseSelector(text);
      assert.ok('problem' in s, JSON.stringify(s));
      assert.match(s.problem, message);
    });
  }
});

describe('login items', () => {
  const cases: [string[], string, boolean][] = [
    [['*'], 'root', true],
    [['pi'], 'pi', true],
    [['pi'], 'root', false],
    [['pi', 'root'], 'root', true],
    [['pi'], 'Pi', false],
    [[], 'pi', false],
    [['pi', '*'], 'anyone', true],
  ];
  for (const [allowed, login, expected] of cases) {
    test(`${login} with ${allowed.join(',') || 'nothing'} → ${expected}`, () => assert.equal(loginAllowed(allowed, login), expected));
  }

  test('names and * are accepted, anything else is told', () => {
    for (const ok of ['*', 'pi', 'root', '_svc', 'a.b-c', 'machine$', 'x'.repeat(32)]) assert.equal(loginProblem(ok), null, ok);
    for (const badItem of ['', '1pi', 'p i', 'pi:x', 'x'.repeat(33), '**', 'pi,root']) {
      assert.equal(loginProblem(badItem), `login '${badItem}' is not a user name (letters, digits, '_', '.', '-', up to 32) or '*'`, badItem);
    }
  });
});

describe('forward targets', () => {
  // [rule, host asked for, port, allowed]
  const cases: [string, string, number, boolean][] = [
    ['*', 'anything.example', 1, true],
    ['127.0.0.1:8080', '127.0.0.1', 8080, true],
    ['127.0.0.1:8080', '127.0.0.1', 8081, false],
    ['127.0.0.1:8080', '127.0.0.2', 8080, false],
    // A name never matches an address rule: the device would resolve it after the check.
    ['127.0.0.1:8080', 'localhost', 8080, false],
    ['localhost:8080', 'localhost', 8080, true],
    ['localhost:8080', 'LOCALHOST', 8080, true],
    ['localhost:8080', '127.0.0.1', 8080, false],
    ['db.internal:*', 'db.internal', 5432, true],
    ['db.internal:*', 'db.internal.', 5432, false],
    ['db.internal:*', 'x.db.internal', 5432, false],
    ['10.0.0.0/24:443', '10.0.0.0', 443, true],
    ['10.0.0.0/24:443', '10.0.0.255', 443, true],
    ['10.0.0.0/24:443', '10.0.1.0', 443, false],
    ['10.0.0.0/24:443', '9.255.255.255', 443, false],
    ['10.0.0.0/24:443', '10.0.0.7', 80, false],
    // Host bits set in the rule are ignored: the prefix decides.
    ['10.0.0.77/24:443', '10.0.0.1', 443, true],
    ['10.0.0.0/25:*', '10.0.0.127', 1, true],
    ['10.0.0.0/25:*', '10.0.0.128', 1, false],
    ['10.1.2.3/32:22', '10.1.2.3', 22, true],
    ['10.1.2.3/32:22', '10.1.2.4', 22, false],
    ['0.0.0.0/0:22', '203.0.113.9', 22, true],
    // An IPv4 rule never matches an IPv6 address, not even a mapped one (refused, not let through).
    ['0.0.0.0/0:22', '::ffff:10.0.0.1', 22, false],
    ['0.0.0.0/0:22', '::1', 22, false],
    // Forms some resolvers read as addresses are names here, so no address rule matches them.
    ['10.0.0.0/8:22', '10.1', 22, false],
    ['10.0.0.0/8:22', '012.0.0.1', 22, false],
    ['10.0.0.0/8:22', '0x0a000001', 22, false],
    ['[fd00::/64]:22', 'fd00::1', 22, true],
    ['[fd00::/64]:22', '[fd00::1]', 22, true],
    ['[fd00::/64]:22', 'FD00:0:0:0:ffff::1', 22, true],
    ['[fd00::/64]:22', 'fd00:0:0:1::1', 22, false],
    ['[fd00::/64]:22', 'fd00::1', 23, false],
    ['[fd00::/64]:22', '10.0.0.1', 22, false],
    ['[fd00::/7]:*', 'fc12::9', 1, true],
    ['[fd00::/7]:*', 'fe80::1', 1, false],
    ['[::1]:8080', '::1', 8080, true],
    ['[::1]:8080', '0:0:0:0:0:0:0:1', 8080, true],
    ['[::1]:8080', '127.0.0.1', 8080, false],
    ['[::/0]:*', '2001:db8::1', 9, true],
    ['[::ffff:10.0.0.0/120]:22', '::ffff:10.0.0.5', 22, true],
    // A zone index is refused: it names an interface, not an address this rule covers.
    ['[fe80::/10]:22', 'fe80::1%eth0', 22, false],
  ];
  for (const [rule, host, port, expected] of cases) {
    test(`${rule}: ${host} port ${port} → ${expected}`, () => assert.equal(forwardAllowed([target(rule)], host, port), expected));
  }

  test('several rules: any one may allow; none allows nothing', () => {
    const rules = ['127.0.0.1:8080', '10.0.0.0/24:443'].map(target);
    assert.equal(forwardAllowed(rules, '10.0.0.9', 443), true);
    assert.equal(forwardAllowed(rules, '127.0.0.1', 8080), true);
    assert.equal(forwardAllowed(rules, '127.0.0.1', 443), false);
    assert.equal(forwardAllowed([], '127.0.0.1', 8080), false);
  });

  test('targets are written back in their usual form', () => {
    const cases: [string, string][] = [
      ['*', '*'], ['LocalHost:80', 'localhost:80'], ['10.0.0.0/24:443', '10.0.0.0/24:443'], ['10.0.0.1/32:22', '10.0.0.1:22'],
      ['[FD00:0:0:0::/64]:22', '[fd00::/64]:22'], ['[::1]:*', '[::1]:*'], ['[1:0:0:2:0:0:0:3]:1', '[1:0:0:2::3]:1'],
      ['[1:0:0:2:0:0:3:4]:1', '[1::2:0:0:3:4]:1'], ['[1:2:3:4:5:6:7:0]:1', '[1:2:3:4:5:6:7:0]:1'], ['[::ffff:10.0.0.1]:1', '[::ffff:a00:1]:1'],
    ];
    for (const [text, written] of cases) assert.equal(forwardTargetText(target(text)), written, text);
  });

  const bad = [
    '', 'localhost', 'localhost:', ':22', 'localhost:0', 'localhost:65536', 'localhost:123456', 'fd00::1:22', '[fd00::1]', '[fd00::1]:',
    '10.0.0.0/33:22', '10.0.0.0/:22', '10.0.0.0/-1:22', '[fd00::/129]:22', 'host/24:22', 'a b:22', '-host:22', 'host-:22', '10.0.0.0/8:x',
    '[]:22', 'host:22:33', 'localhost:*:*',
  ];
  for (const text of bad) {
    test(`'${text}' is refused with the forms it may take`, () => {
      const t = parseForwardTarget(text);
      assert.ok('problem' in t, JSON.stringify(t));
      assert.equal(t.problem, `forward target '${text}' must be HOST:PORT, HOST:*, ADDRESS/PREFIX:PORT (e.g. 10.0.0.0/24:443; [fd00::/64]:22 for IPv6) or '*'`);
    });
  }
});

describe('address literals', () => {
  const cases: [string, number[] | null][] = [
    ['10.0.0.1', [10, 0, 0, 1]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['256.0.0.1', null],
    ['01.0.0.1', null],
    ['1.2.3', null],
    ['1.2.3.4.5', null],
    ['::', Array(16).fill(0)],
    ['::1', [...Array(15).fill(0), 1]],
    ['1::', [0, 1, ...Array(14).fill(0)]],
    ['1:2:3:4:5:6:7:8', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ['::ffff:1.2.3.4', [...Array(10).fill(0), 255, 255, 1, 2, 3, 4]],
    ['1:2:3:4:5:6:1.2.3.4', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]],
    ['1:2:3:4:5:6:7::8', null],
    ['1:2:3:4:5:6:7', null],
    ['1::2::3', null],
    ['1:::2', null],
    ['12345::', null],
    ['g::1', null],
    // An IPv4 part may only end an IPv6 address.
    ['1.2.3.4::', null],
    ['::1.2.3.4:5', null],
    ['1:2:1.2.3.4::5', null],
    ['fe80::1%eth0', null],
    ['localhost', null],
  ];
  for (const [text, bytes] of cases) test(`${text} → ${bytes === null ? 'not an address' : bytes.length + ' bytes'}`, () => assert.deepEqual(parseAddress(text), bytes));
});

describe('actions', () => {
  const cases: [string[], Action, boolean][] = [
    [['*'], 'role.edit', true],
    [['role.*'], 'role.edit', true],
    [['role.*'], 'user.role', false],
    [['user.*'], 'user.role', true],
    [['device.approve'], 'device.approve', true],
    [['device.approve'], 'device.revoke', false],
    [[], 'audit.read', false],
    [['audit.read', 'token.*'], 'token.revoke', true],
    // A group must be a whole word: `user.*` is not `use.*`, and `token*` is no group.
    [['use.*'], 'user.add', false],
    [['token*'], 'token.create', false],
  ];
  for (const [granted, action, expected] of cases) {
    test(`${action} with ${granted.join(',') || 'none'} → ${expected}`, () => assert.equal(actionAllowed(granted, action), expected));
  }

  test('known actions, groups and * are accepted; anything else is told with the list', () => {
    for (const ok of ['*', 'token.create', 'audit.verify', 'user.*', 'role.*', 'audit.*', 'recording.read', 'recording.*']) assert.equal(actionProblem(ok), null, ok);
    for (const badItem of ['', 'token', 'token.make', 'use.*', '.*', '*.*', 'user.key.*', 'Token.create']) {
      assert.match(actionProblem(badItem) ?? '', new RegExp(`^action '${badItem.replace(/[.*]/g, '\\$&')}' is not known: use one of token.create, .*, a group \\(token\\.\\*, device\\.\\*, user\\.\\*, role\\.\\*, audit\\.\\*, recording\\.\\*\\) or '\\*'$`), badItem);
    }
  });
});
