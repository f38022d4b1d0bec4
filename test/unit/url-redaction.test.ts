// Covers src/common/url-redaction.ts: a URL's password never shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactUrl } from '../../src/common/url-redaction.ts';

test('the password is replaced, the rest is kept', () => {
  assert.equal(redactUrl('http://user:secret@proxy:3128'), 'http://user:***@proxy:3128');
  assert.equal(redactUrl(new URL('http://user:secret@proxy:3128/')), 'http://user:***@proxy:3128/');
  assert.equal(redactUrl('http://proxy:3128'), 'http://proxy:3128');
  assert.equal(redactUrl('http://user@proxy:3128'), 'http://user@proxy:3128');
  assert.equal(redactUrl('not a url secret'), '(an unreadable URL)');
});
