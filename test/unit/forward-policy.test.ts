/** The built-in server's -L allowlist: pure matching of host and port against the rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FORWARD_RULES, mayForward, parseForwardRules } from '../../src/agent/embedded/forward-policy.ts';

test('forward rules: hosts match exactly, A-Z folded, any port or one port', () => {
  const { rules, problems } = parseForwardRules(['Kiosk:8080', '10.0.0.5:*', '[::1]:22']);
  assert.deepEqual(problems, []);
  const cases: [string, number, boolean][] = [
    ['kiosk', 8080, true], ['KIOSK', 8080, true], ['kiosk', 8081, false],
    ['10.0.0.5', 1, true], ['10.0.0.6', 1, false], ['[::1]', 22, true], ['::1', 22, true], ['::1', 23, false],
  ];
  for (const [host, port, allowed] of cases) assert.equal(mayForward(rules, host, port), allowed, `${host}:${port}`);
});

test('forward rules: a Unicode look-alike of an allowed name is refused (KELVIN SIGN folds to k in toLowerCase)', () => {
  const { rules } = parseForwardRules(['kiosk:8080']);
  assert.equal(mayForward(rules, '\u212Aiosk', 8080), false);
  assert.equal(mayForward(DEFAULT_FORWARD_RULES, 'localhost', 80), true);
  assert.equal(mayForward(DEFAULT_FORWARD_RULES, 'loca\u0130host', 80), false);
});
