// Covers src/web/components/list-input.ts: lists and labels typed into one field of the
// console's forms (roles' devices and logins, a token's labels), split the way the relay's
// own syntax needs (a selector such as `site=berlin` stays whole; an item without `=` is a
// problem, never a guess).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelItems, lineItems, listItems } from '../../src/web/components/list-input.ts';

test('lists split on commas and new lines, trimmed, with empty items left out', () => {
  assert.deepEqual(listItems(' lab, site=berlin ,\n\n cam ,, '), ['lab', 'site=berlin', 'cam']);
  assert.deepEqual(listItems('   '), []);
  // A selector with a negation keeps its '!' and '=': only commas and new lines separate.
  assert.deepEqual(listItems('env!=prod, 10.0.0.1:80'), ['env!=prod', '10.0.0.1:80']);
});

test('device selectors go one to a line: the commas inside one join its terms', () => {
  assert.deepEqual(lineItems(' site=berlin,env!=prod \n\n*\n'), ['site=berlin,env!=prod', '*']);
});

test('labels are key=value items; the value may hold "=", and an item without a key is named as a problem', () => {
  assert.deepEqual(labelItems('site = berlin, kind=camera'), { labels: { site: 'berlin', kind: 'camera' }, problems: [] });
  assert.deepEqual(labelItems('note=a=b'), { labels: { note: 'a=b' }, problems: [] });
  assert.deepEqual(labelItems('site, =x, ok=1'), { labels: { ok: '1' }, problems: ["label 'site' is not key=value", "label '=x' is not key=value"] });
  assert.deepEqual(labelItems(''), { labels: {}, problems: [] });
});
