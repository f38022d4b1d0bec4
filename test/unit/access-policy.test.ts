// Covers src/relay/access-policy.ts on tables of cases: which roles cover which devices,
// what logins and forwards the union grants, relay actions, and each device's key list.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authorizedKeysFor, forwardTargetsOf, grantFor, mayAct, mayLogin, mayReach, type RoleSpec, type Subject } from '../../src/relay/access-policy.ts';

const role = (name: string, o: Partial<RoleSpec> = {}): RoleSpec => ({ name, devices: ['*'], logins: ['*'], forwards: ['*'], actions: [], ...o });

const ROLES = {
  admin: role('admin', { actions: ['*'] }),
  operator: role('operator'),
  berlinOps: role('berlin-ops', { devices: ['site=berlin,env!=prod'], logins: ['pi'], forwards: ['127.0.0.1:8080'] }),
  berlinProd: role('berlin-prod', { devices: ['site=berlin,env=prod'], logins: ['root'], forwards: [] }),
  cams: role('cams', { devices: ['kind=cam', 'site=paris'], logins: ['pi', 'viewer'], forwards: ['10.0.0.0/24:443'], actions: ['device.list'] }),
  noLogins: role('look-only', { devices: ['*'], logins: [], forwards: [] }),
  auditor: role('auditor', { devices: [], logins: [], forwards: [], actions: ['audit.*'] }),
};

const DEVICES = {
  berlinDev: { name: 'b-dev', labels: { site: 'berlin', env: 'dev' } },
  berlinProd: { name: 'b-prod', labels: { site: 'berlin', env: 'prod' } },
  berlinBare: { name: 'b-bare', labels: { site: 'berlin' } },
  parisCam: { name: 'p-cam', labels: { site: 'paris', kind: 'cam' } },
  lonely: { name: 'lonely', labels: {} },
};

const who = (user: string, ...roles: RoleSpec[]): Subject => ({ user, roles });

describe('grantFor and mayLogin', () => {
  // [subject, device, login, allowed, roles that grant (when allowed)]
  const cases: [Subject, keyof typeof DEVICES, string, boolean, string[]?][] = [
    [who('ann', ROLES.admin), 'lonely', 'root', true, ['admin']],
    [who('bo', ROLES.berlinOps), 'berlinDev', 'pi', true, ['berlin-ops']],
    [who('bo', ROLES.berlinOps), 'berlinDev', 'root', false],
    [who('bo', ROLES.berlinOps), 'berlinBare', 'pi', true, ['berlin-ops']],
    [who('bo', ROLES.berlinOps), 'berlinProd', 'pi', false],
    [who('bo', ROLES.berlinOps), 'parisCam', 'pi', false],
    [who('bo', ROLES.berlinOps, ROLES.berlinProd), 'berlinProd', 'root', true, ['berlin-prod']],
    [who('bo', ROLES.berlinOps, ROLES.berlinProd), 'berlinProd', 'pi', false],
    [who('cy', ROLES.cams), 'parisCam', 'viewer', true, ['cams']],
    [who('cy', ROLES.cams), 'berlinDev', 'viewer', false],
    [who('cy', ROLES.cams, ROLES.berlinOps), 'berlinDev', 'viewer', false],
    [who('cy', ROLES.cams, ROLES.berlinOps), 'berlinDev', 'pi', true, ['berlin-ops']],
    [who('dee', ROLES.noLogins), 'lonely', 'pi', false],
    [who('dee', ROLES.noLogins, ROLES.operator), 'lonely', 'pi', true, ['look-only', 'operator']],
    [who('eve'), 'lonely', 'pi', false],
    [who('fay', ROLES.auditor), 'lonely', 'pi', false],
  ];
  for (const [subject, d, login, allowed, roles] of cases) {
    test(`${subject.user} (${subject.roles.map((r) => r.name).join(',') || 'no roles'}) on ${d} as ${login} → ${allowed}`, () => {
      const decision = mayLogin(subject, DEVICES[d], login);
      assert.equal(decision.allow, allowed, JSON.stringify(decision));
      if (decision.allow) assert.deepEqual(decision.roles, roles);
    });
  }

  test('the union over covering roles: logins and forwards together, * swallowing the rest', () => {
    assert.deepEqual(grantFor(who('x', ROLES.berlinOps, ROLES.cams), { name: 'd', labels: { site: 'berlin', kind: 'cam' } }), {
      roles: ['berlin-ops', 'cams'], logins: ['pi', 'viewer'], forwards: ['127.0.0.1:8080', '10.0.0.0/24:443'],
    });
    assert.deepEqual(grantFor(who('x', ROLES.berlinOps, ROLES.operator), DEVICES.berlinDev), { roles: ['berlin-ops', 'operator'], logins: ['*'], forwards: ['*'] });
    assert.deepEqual(grantFor(who('x', ROLES.berlinProd), DEVICES.berlinProd), { roles: ['berlin-prod'], logins: ['root'], forwards: [] });
    assert.equal(grantFor(who('x', ROLES.berlinOps), DEVICES.lonely), null);
  });

  test('a selector that does not parse covers nothing', () => {
    assert.equal(grantFor(who('x', role('broken', { devices: ['Site=x', ''] })), DEVICES.lonely), null);
  });
});

describe('refusals name the rule', () => {
  test('no role covers the device: its labels and every role with its selectors', () => {
    assert.deepEqual(mayReach(who('bo', ROLES.berlinOps, ROLES.cams), DEVICES.berlinProd), {
      allow: false,
      message: "'bo' may not reach device 'b-prod' (labels site=berlin,env=prod): no role covers it (roles berlin-ops: devices site=berlin,env!=prod; cams: devices kind=cam or site=paris)",
    });
    assert.deepEqual(mayReach(who('eve'), DEVICES.lonely), { allow: false, message: "'eve' may not reach device 'lonely' (no labels): no role covers it (roles none)" });
  });

  test('covered, but no login names at all', () => {
    assert.deepEqual(mayReach(who('dee', ROLES.noLogins), DEVICES.lonely), {
      allow: false, message: "'dee' may not log in to device 'lonely': roles look-only cover it but allow no login names",
    });
  });

  test('the wrong login: the logins the covering roles allow', () => {
    assert.deepEqual(mayLogin(who('cy', ROLES.cams), DEVICES.parisCam, 'root'), {
      allow: false, message: "'cy' may not log in to 'p-cam' as 'root': roles cams allow pi, viewer",
    });
  });

  test('an action no role grants: each role with its actions', () => {
    assert.deepEqual(mayAct(who('bo', ROLES.berlinOps, ROLES.cams), 'role.edit'), {
      allow: false, message: "'bo' may not run role.edit: no role grants it (roles berlin-ops: actions none; cams: actions device.list)",
    });
  });
});

describe('mayAct', () => {
  const cases: [Subject, Parameters<typeof mayAct>[1], boolean][] = [
    [who('a', ROLES.admin), 'role.edit', true],
    [who('a', ROLES.operator), 'device.list', false],
    [who('a', ROLES.cams), 'device.list', true],
    [who('a', ROLES.cams), 'device.approve', false],
    [who('a', ROLES.auditor), 'audit.verify', true],
    [who('a', ROLES.auditor), 'user.list', false],
    [who('a'), 'audit.read', false],
  ];
  for (const [subject, action, expected] of cases) {
    test(`${subject.roles.map((r) => r.name).join(',') || 'no roles'} ${action} → ${expected}`, () => assert.equal(mayAct(subject, action).allow, expected));
  }
  test('every role that grants it is named', () => {
    assert.deepEqual(mayAct(who('a', ROLES.cams, ROLES.admin), 'device.list'), { allow: true, roles: ['cams', 'admin'] });
  });
});

describe('authorizedKeysFor', () => {
  const users = [
    { name: 'ann', keys: [{ line: 'ssh-ed25519 A1' }, { line: 'ssh-ed25519 A2' }], roles: [ROLES.admin] },
    { name: 'bo', keys: [{ line: 'ssh-ed25519 B' }], roles: [ROLES.berlinOps] },
    { name: 'cy', keys: [{ line: 'ssh-ed25519 C' }], roles: [ROLES.cams] },
    { name: 'dee', keys: [{ line: 'ssh-ed25519 D' }], roles: [ROLES.noLogins] },
    { name: 'eve', keys: [], roles: [ROLES.operator] },
  ];
  test('each device gets exactly the keys whose roles cover it, with their logins, forwards and roles', () => {
    assert.deepEqual(authorizedKeysFor({ ...DEVICES.berlinDev, status: 'approved' }, users), [
      { user: 'ann', line: 'ssh-ed25519 A1', logins: ['*'], forwards: ['*'], roles: ['admin'] },
      { user: 'ann', line: 'ssh-ed25519 A2', logins: ['*'], forwards: ['*'], roles: ['admin'] },
      { user: 'bo', line: 'ssh-ed25519 B', logins: ['pi'], forwards: ['127.0.0.1:8080'], roles: ['berlin-ops'] },
    ]);
    assert.deepEqual(authorizedKeysFor({ ...DEVICES.parisCam, status: 'approved' }, users).map((k) => `${k.user}:${k.logins.join(',')}`), ['ann:*', 'ann:*', 'cy:pi,viewer']);
  });
  test('pending, revoked and unknown devices get no keys', () => {
    assert.deepEqual(authorizedKeysFor({ ...DEVICES.lonely, status: 'pending' }, users), []);
    assert.deepEqual(authorizedKeysFor({ ...DEVICES.lonely, status: 'revoked' }, users), []);
    assert.deepEqual(authorizedKeysFor(null, users), []);
  });
});

describe('forwardTargetsOf', () => {
  test('items that do not parse grant nothing', () => {
    assert.deepEqual(forwardTargetsOf(['127.0.0.1:80', 'nonsense', '*']), [{ kind: 'net', bytes: [127, 0, 0, 1], prefix: 32, port: 80 }, { kind: 'any' }]);
  });
});
