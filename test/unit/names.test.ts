// Covers src/protocol/names.ts: device names, user names, names from host names, and label parsing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LIMITS } from '../../src/protocol/limits.ts';
import { AGENT_LOGIN, ENROLL_LOGIN, asciiLowerCase, deviceNameFromHost, deviceNameFromHostname, deviceNameProblem, parseLabels, userNameProblem } from '../../src/protocol/names.ts';

describe('deviceNameProblem', () => {
  test('accepts lowercase DNS labels up to 63 characters', () => {
    for (const name of ['a', '0', 'garage-cam', 'pi4', 'a1-b2-c3', 'x'.repeat(63)]) {
      assert.equal(deviceNameProblem(name), null, name);
    }
  });

  test('rejects what is not a DNS label, saying what a label is', () => {
    for (const name of ['', '-a', 'a-', 'a_b', 'a.b', 'a b', 'x'.repeat(64), 'a/b']) {
      const p = deviceNameProblem(name);
      assert.ok(p !== null, `${JSON.stringify(name)} should be refused`);
      assert.match(p, /is not a DNS label: use 1-63 of a-z, 0-9 and '-'/);
      assert.ok(p.includes(`'${name}'`), 'the message quotes the name');
    }
  });

  test('upper-case letters get a hint with the lowercase name', () => {
    assert.equal(deviceNameProblem('Garage-Cam'),
      "device name 'Garage-Cam' has upper-case letters; OpenSSH lowercases host names, so use 'garage-cam'");
  });

  test('upper case that is invalid anyway gets the general message', () => {
    assert.match(deviceNameProblem('Garage_Cam')!, /is not a DNS label/);
  });
});

describe('userNameProblem', () => {
  test('accepts POSIX-like user names up to 32 characters', () => {
    for (const name of ['alice', '_svc', 'a.b-c_d', 'a'.repeat(32), 'bob2']) assert.equal(userNameProblem(name), null, name);
  });

  test('rejects bad user names', () => {
    for (const name of ['', 'Alice', '1alice', '-a', '.a', 'a b', 'a'.repeat(33), 'a@b']) {
      assert.match(userNameProblem(name) ?? '', /is invalid: use up to 32 of a-z/, name);
    }
  });

  test("names starting with 'ferry-' are reserved for agents", () => {
    for (const name of [AGENT_LOGIN, ENROLL_LOGIN, 'ferry-admin']) {
      assert.equal(userNameProblem(name), `user name '${name}' is reserved: names starting with 'ferry-' belong to agents`);
    }
    assert.equal(userNameProblem('ferry'), null, "'ferry' alone is not reserved");
    assert.equal(userNameProblem('ferryman'), null);
  });
});

describe('deviceNameFromHostname', () => {
  test('takes the first label, lowercased', () => {
    assert.equal(deviceNameFromHostname('Garage-Cam.local'), 'garage-cam');
    assert.equal(deviceNameFromHostname('pi'), 'pi');
  });

  test('turns runs of other characters into one dash and trims dashes', () => {
    assert.equal(deviceNameFromHostname('My_Laptop (2)'), 'my-laptop-2');
    assert.equal(deviceNameFromHostname('__x__'), 'x');
  });

  test('returns null when nothing usable is left', () => {
    for (const h of ['', '---', '.local', '___', 'é']) assert.equal(deviceNameFromHostname(h), null, h);
  });

  test('cuts long names to 63 characters and never leaves a dash at the cut', () => {
    assert.equal(deviceNameFromHostname('a'.repeat(80)), 'a'.repeat(63));
    // The cut at 63 falls right after a separator: the name must still be a valid label.
    const cut = deviceNameFromHostname('a'.repeat(62) + '_bcd');
    assert.equal(cut, 'a'.repeat(62));
    assert.equal(deviceNameProblem(cut!), null);
    // Leading separators do not eat into the 63 characters.
    assert.equal(deviceNameFromHostname('--' + 'b'.repeat(63)), 'b'.repeat(63));
  });
});

describe('parseLabels', () => {
  test('parses key=value pairs; the value may be empty or contain =', () => {
    const r = parseLabels(['site=berlin', 'rack/pos=a=1', 'empty=']);
    assert.deepEqual(r, { labels: { site: 'berlin', 'rack/pos': 'a=1', empty: '' }, problems: [] });
  });

  test('reports every bad label at once, and keeps the good ones', () => {
    const r = parseLabels(['noequals', 'Bad=1', '=v', 'ok=yes', `k=${'v'.repeat(LIMITS.maxLabelValueLength + 1)}`, 'ctl=a\nb', '-x=1']);
    assert.deepEqual(r.labels, { ok: 'yes' });
    assert.deepEqual(r.problems, [
      "label 'noequals' has no '=': write key=value",
      "label key 'Bad' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
      "label key '' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
      `label 'k' has a value longer than ${LIMITS.maxLabelValueLength} characters`,
      "label 'ctl' has a control character in its value (U+000A): labels are shown in terminals, where these hide or reorder text",
      "label key '-x' is invalid: use lowercase letters, digits, '_', '.', '/', '-'",
    ]);
  });

  test('limits key length', () => {
    assert.deepEqual(parseLabels([`${'k'.repeat(LIMITS.maxLabelKeyLength)}=1`]).problems, []);
    assert.equal(parseLabels([`${'k'.repeat(LIMITS.maxLabelKeyLength + 1)}=1`]).problems.length, 1);
  });

  test('a value of the longest allowed length is fine; DEL is a control character', () => {
    assert.deepEqual(parseLabels([`k=${'v'.repeat(LIMITS.maxLabelValueLength)}`]).problems, []);
    assert.equal(parseLabels(['k=a\x7f']).problems.length, 1);
  });

  test('limits the number of labels', () => {
    const many = Array.from({ length: LIMITS.maxLabels + 1 }, (_, i) => `k${i}=v`);
    assert.deepEqual(parseLabels(many.slice(0, LIMITS.maxLabels)).problems, []);
    assert.deepEqual(parseLabels(many).problems, [`too many labels: at most ${LIMITS.maxLabels}`]);
  });

  test('no labels is fine', () => {
    assert.deepEqual(parseLabels([]), { labels: {}, problems: [] });
  });
});

/**
 * Look-alikes that String.prototype.toLowerCase folds onto ASCII letters, or that render like
 * them (issue #9: '\u212Aiosk' reached the device 'kiosk').
 */
const LOOK_ALIKES: [string, string][] = [
  ['\u212Aiosk', 'U+212A'], // KELVIN SIGN, lowercases to 'k'
  ['\u0130stanbul', 'U+0130'], // LATIN CAPITAL I WITH DOT ABOVE, lowercases to 'i' + combining dot
  ['gar\u0430ge', 'U+0430'], // CYRILLIC SMALL A
  ['cam\uFF11', 'U+FF11'], // FULLWIDTH DIGIT ONE
  ['pi\u200B', 'U+200B'], // ZERO WIDTH SPACE
  ['\u00C5ngstrom', 'U+00C5'], // A WITH RING ABOVE (the ANGSTROM SIGN U+212B lowercases to its lower case)
  ['\u212Bngstrom', 'U+212B'], // ANGSTROM SIGN
  ['\u017Fsh', 'U+017F'], // LATIN SMALL LONG S, uppercases to 'S'
];

describe('names are ASCII before any case folding (issue #9)', () => {
  test('deviceNameFromHost folds A-Z only, so look-alikes reach no device', () => {
    for (const [host] of LOOK_ALIKES) {
      const name = deviceNameFromHost(host);
      assert.ok(deviceNameProblem(name) !== null, `${JSON.stringify(host)} gave the valid name ${JSON.stringify(name)}`);
    }
    assert.equal(deviceNameFromHost('\u212Aiosk'), '\u212Aiosk');
    assert.equal(deviceNameFromHost('\u212Aiosk.FERRY'), '\u212Aiosk');
    assert.equal(deviceNameFromHost('Kiosk.Ferry'), 'kiosk');
  });

  test('device and user names with a look-alike are refused, naming the code point', () => {
    for (const [name, codePoint] of LOOK_ALIKES) {
      assert.equal(deviceNameProblem(name),
        `device name '${name}' has a character that is not ASCII (${codePoint}), which may look like a letter but is not one: use 1-63 of a-z, 0-9 and '-'`);
      assert.match(userNameProblem(name) ?? '', /^user name '.*' has a character that is not ASCII \(U\+[0-9A-F]{4}\): use up to 32 of a-z/, name);
    }
  });

  test('label keys with a look-alike are refused', () => {
    for (const [name] of LOOK_ALIKES) assert.equal(parseLabels([`${name}=1`]).problems.length, 1, name);
  });

  test('asciiLowerCase leaves everything but A-Z alone', () => {
    assert.equal(asciiLowerCase('AbC-Z09\u212A\u0130\u00C5'), 'abc-z09\u212A\u0130\u00C5');
  });

  test('a host name with a look-alike gives no look-alike device name', () => {
    assert.equal(deviceNameFromHostname('\u212Aiosk'), 'iosk');
  });
});

describe('label values (issue #9)', () => {
  /** Characters refused in a label value, and why they are there. */
  const REFUSED: [string, string][] = [
    ['\u0000', 'NUL'], ['\u001b', 'ESC'], ['\u007f', 'DEL'], ['\u0085', 'NEL (C1)'], ['\u009b', 'CSI (C1)'],
    ['\u061C', 'ARABIC LETTER MARK'], ['\u200E', 'LRM'], ['\u200F', 'RLM'],
    ['\u202A', 'LRE'], ['\u202B', 'RLE'], ['\u202C', 'PDF'], ['\u202D', 'LRO'], ['\u202E', 'RLO'],
    ['\u2066', 'LRI'], ['\u2067', 'RLI'], ['\u2068', 'FSI'], ['\u2069', 'PDI'],
    ['\u2028', 'LINE SEPARATOR'], ['\u2029', 'PARAGRAPH SEPARATOR'],
  ];
  for (const [c, what] of REFUSED) {
    test(`refuses ${what} in a value, naming the code point`, () => {
      const codePoint = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      assert.deepEqual(parseLabels([`owner=ev${c}il`]), { labels: {},
        problems: [`label 'owner' has a control character in its value (${codePoint}): labels are shown in terminals, where these hide or reorder text`] });
    });
  }

  test('accepts ordinary Unicode text in a value', () => {
    for (const value of ['Zürich', 'Kraków', '東京', 'שלום', 'café ☕', 'a b\tc'.replace('\t', ' ')]) {
      assert.deepEqual(parseLabels([`site=${value}`]), { labels: { site: value }, problems: [] }, value);
    }
  });
});
