// Covers src/relay/command-line.ts: splitting an SSH exec command line into words like a POSIX shell.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitCommandLine } from '../../src/relay/command-line.ts';

const words = (line: string) => {
  const r = splitCommandLine(line);
  assert.ok('words' in r, `expected words for ${JSON.stringify(line)}, got ${JSON.stringify(r)}`);
  return r.words;
};

test('plain words split on any white space', () => {
  assert.deepEqual(words('devices --json'), ['devices', '--json']);
  assert.deepEqual(words('  a \t b\n c  '), ['a', 'b', 'c']);
  assert.deepEqual(words(''), []);
  assert.deepEqual(words('   '), []);
});

test('single quotes keep everything literally', () => {
  assert.deepEqual(words(`user add bob --key 'ssh-ed25519 AAAA bob@laptop'`), ['user', 'add', 'bob', '--key', 'ssh-ed25519 AAAA bob@laptop']);
  assert.deepEqual(words(`'a\\b "c"'`), ['a\\b "c"']);
});

test('double quotes allow \\" \\\\ \\$ \\` escapes and keep other backslashes', () => {
  assert.deepEqual(words(`"a \\"b\\" \\\\ \\$x \\\`"`), ['a "b" \\ $x `']);
  assert.deepEqual(words(`"a\\nb"`), ['a\\nb']);
  assert.deepEqual(words(`"it's"`), ["it's"]);
});

test('backslash outside quotes escapes the next character, including a space', () => {
  assert.deepEqual(words('a\\ b c'), ['a b', 'c']);
  assert.deepEqual(words(`\\'x`), ["'x"]);
  assert.deepEqual(words('end\\'), ['end\\'], 'a trailing backslash stays');
});

test('empty quotes make an empty word; adjacent pieces join', () => {
  assert.deepEqual(words(`a '' b ""`), ['a', '', 'b', '']);
  assert.deepEqual(words(`--label=k='v w'"x"`), ['--label=k=v wx']);
});

test('an unclosed quote is a problem, naming the quote', () => {
  assert.deepEqual(splitCommandLine(`token create --name 'cam`), { problem: "unclosed ' quote in the command" });
  assert.deepEqual(splitCommandLine(`a "b`), { problem: 'unclosed " quote in the command' });
  assert.deepEqual(splitCommandLine(`"a\\"`), { problem: 'unclosed " quote in the command' });
});
