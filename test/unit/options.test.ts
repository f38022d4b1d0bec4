// Covers src/cli/options.ts: flag > environment > config file precedence, typed getters, and check() reporting every problem at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FerryError, isFerryError } from '../../src/common/errors.ts';
import { Options, flagHelp, wantsHelp, type FlagSpec } from '../../src/cli/options.ts';
import { agentConfigFromArgs } from '../../src/cli/agent-command.ts';
import { relayConfigFromArgs } from '../../src/cli/relay-command.ts';

const SPECS: Record<string, FlagSpec> = {
  'data-dir': { type: 'string', env: 'FERRY_DATA_DIR', help: 'where data lives' },
  'keepalive-count': { type: 'string', env: 'FERRY_KEEPALIVE_COUNT', help: 'missed keepalives' },
  'keepalive-interval': { type: 'string', env: 'FERRY_KEEPALIVE_INTERVAL', help: 'keepalive interval' },
  'ssh-listen': { type: 'string', env: 'FERRY_SSH_LISTEN', help: 'listen address' },
  'admin-key': { type: 'string', multiple: true, env: 'FERRY_ADMIN_KEY', help: 'admin key files' },
  verbose: { type: 'boolean', env: 'FERRY_VERBOSE', help: 'say more' },
  'log-level': { type: 'string', env: 'FERRY_LOG_LEVEL', help: 'log level' },
  plain: { type: 'string', help: 'no environment variable' },
};

const dir = mkdtempSync(join(tmpdir(), 'ferry-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${++files}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function problemsOf(o: Options, more: string[] = []): string[] {
  try {
    o.check(more);
    return [];
  } catch (err) {
    assert.ok(isFerryError(err, 'FERRY_CONFIG_INVALID'), String(err));
    return err.message.split('\n');
  }
}

describe('precedence', () => {
  const file = () => configFile({ 'data-dir': '/from/file', verbose: true, 'admin-key': ['/file/a', '/file/b'], plain: 'file' });

  test('the config file alone', () => {
    const o = new Options(['--config', file()], SPECS, {});
    assert.equal(o.string('data-dir'), '/from/file');
    assert.equal(o.boolean('verbose'), true);
    assert.deepEqual(o.strings('admin-key'), ['/file/a', '/file/b']);
    assert.deepEqual(o.problems, []);
  });

  test('the environment beats the file', () => {
    const o = new Options(['--config', file()], SPECS, { FERRY_DATA_DIR: '/from/env', FERRY_ADMIN_KEY: '/env/key', FERRY_VERBOSE: '0' });
    assert.equal(o.string('data-dir'), '/from/env');
    assert.deepEqual(o.strings('admin-key'), ['/env/key']);
    assert.equal(o.boolean('verbose'), false);
  });

  test('a flag beats the environment and the file', () => {
    const o = new Options(['--config', file(), '--data-dir', '/from/flag', '--admin-key', '/f1', '--admin-key', '/f2', '--plain', 'flag'], SPECS,
      { FERRY_DATA_DIR: '/from/env', FERRY_ADMIN_KEY: '/env/key' });
    assert.equal(o.string('data-dir'), '/from/flag');
    assert.deepEqual(o.strings('admin-key'), ['/f1', '/f2']);
    assert.equal(o.string('plain'), 'flag');
  });

  test('an empty environment variable counts as unset', () => {
    const o = new Options(['--config', file()], SPECS, { FERRY_DATA_DIR: '' });
    assert.equal(o.string('data-dir'), '/from/file');
  });

  test('only the variable named in the spec is read', () => {
    const o = new Options([], SPECS, { FERRY_PLAIN: 'x', PLAIN: 'y' });
    assert.equal(o.string('plain'), null);
  });

  test('boolean environment values: 1 and true are true, anything else false', () => {
    for (const [value, expected] of [['1', true], ['true', true], ['0', false], ['false', false], ['yes', false]] as const) {
      assert.equal(new Options([], SPECS, { FERRY_VERBOSE: value }).boolean('verbose'), expected, value);
    }
    assert.equal(new Options(['--verbose'], SPECS, { FERRY_VERBOSE: '0' }).boolean('verbose'), true);
  });

  test('nothing given: getters return their fallbacks', () => {
    const o = new Options([], SPECS, {});
    assert.equal(o.string('data-dir'), null);
    assert.deepEqual(o.strings('admin-key'), []);
    assert.equal(o.boolean('verbose'), false);
    assert.equal(o.duration('keepalive-interval', 20_000), 20_000);
    assert.equal(o.integer('keepalive-count', 3, 1, 100), 3);
    assert.deepEqual(o.hostPort('ssh-listen', { host: '0.0.0.0', port: 2222 }), { host: '0.0.0.0', port: 2222 });
    assert.equal(o.logLevel(), 'info');
    assert.doesNotThrow(() => o.check());
  });
});

describe('typed values', () => {
  test('durations', () => {
    assert.equal(new Options(['--keepalive-interval', '1m30s'], SPECS, {}).duration('keepalive-interval', 1), 90_000);
    for (const bad of ['20', '0s', 'soon']) {
      const o = new Options([`--keepalive-interval=${bad}`], SPECS, {});
      assert.equal(o.duration('keepalive-interval', 7), 7, 'the fallback on a problem');
      assert.deepEqual(o.problems, [`--keepalive-interval '${bad}' is not a duration like 500ms, 20s or 5m`]);
    }
  });

  test('integers, from flags, the environment and numbers in the config file', () => {
    assert.equal(new Options(['--keepalive-count', '5'], SPECS, {}).integer('keepalive-count', 3, 1, 100), 5);
    assert.equal(new Options([], SPECS, { FERRY_KEEPALIVE_COUNT: '7' }).integer('keepalive-count', 3, 1, 100), 7);
    const fromFile = new Options(['--config', configFile({ 'keepalive-count': 9 })], SPECS, {});
    assert.equal(fromFile.integer('keepalive-count', 3, 1, 100), 9);
    assert.deepEqual(fromFile.problems, []);
    for (const bad of ['0', '101', '2.5', 'x', '']) {
      const o = new Options([`--keepalive-count=${bad}`], SPECS, {});
      assert.equal(o.integer('keepalive-count', 3, 1, 100), 3);
      assert.deepEqual(o.problems, [`--keepalive-count '${bad}' must be a whole number from 1 to 100`], JSON.stringify(bad));
    }
  });

  test('HOST:PORT, with port 0 only where allowed', () => {
    const hp = (v: string, zero = false) => {
      const o = new Options(['--ssh-listen', v], SPECS, {});
      return { value: o.hostPort('ssh-listen', null, zero), problems: o.problems };
    };
    assert.deepEqual(hp('127.0.0.1:2222'), { value: { host: '127.0.0.1', port: 2222 }, problems: [] });
    assert.deepEqual(hp('[::1]:22'), { value: { host: '::1', port: 22 }, problems: [] });
    assert.deepEqual(hp('127.0.0.1:0', true), { value: { host: '127.0.0.1', port: 0 }, problems: [] });
    assert.deepEqual(hp('[::1]:0', true), { value: { host: '::1', port: 0 }, problems: [] });
    for (const [v, zero] of [['127.0.0.1:0', false], ['2222', false], ['host:', false], ['host:70000', false], [':0', true], ['a b:0', true], ['a:b:0', true]] as const) {
      assert.deepEqual(hp(v, zero), { value: null, problems: [`--ssh-listen '${v}' must be HOST:PORT`] }, v);
    }
  });

  test('log levels', () => {
    assert.equal(new Options(['--log-level', 'debug'], SPECS, {}).logLevel(), 'debug');
    const o = new Options([], SPECS, { FERRY_LOG_LEVEL: 'loud' });
    assert.equal(o.logLevel(), 'info');
    assert.deepEqual(o.problems, ["--log-level 'loud' is not one of fatal, error, warn, info, debug, trace, silent"]);
  });

  test('a config file value of the wrong type is a problem', () => {
    const o = new Options(['--config', configFile({ 'data-dir': 5, plain: ['x'] })], SPECS, {});
    assert.equal(o.string('data-dir'), null);
    assert.equal(o.string('plain'), null);
    assert.deepEqual(o.problems, ['--data-dir must be a string', '--plain must be a string']);
  });
});

describe('problems', () => {
  test('check() reports every problem at once, plus the caller\'s', () => {
    const cfg = configFile({ 'data-dir': '/d', bogus: 1, other: 2 });
    const o = new Options(['--config', cfg, '--keepalive-interval', 'x', '--keepalive-count', '0', '--ssh-listen', 'nope', '--log-level', 'loud'], SPECS, {});
    o.duration('keepalive-interval', 1);
    o.integer('keepalive-count', 3, 1, 100);
    o.hostPort('ssh-listen', null);
    o.logLevel();
    assert.deepEqual(problemsOf(o, ['--token is required']), [
      `--config ${cfg}: unknown key 'bogus'`,
      `--config ${cfg}: unknown key 'other'`,
      "--keepalive-interval 'x' is not a duration like 500ms, 20s or 5m",
      "--keepalive-count '0' must be a whole number from 1 to 100",
      "--ssh-listen 'nope' must be HOST:PORT",
      "--log-level 'loud' is not one of fatal, error, warn, info, debug, trace, silent",
      '--token is required',
    ]);
  });

  test('check() with only extra problems still throws; with none it does not', () => {
    assert.deepEqual(problemsOf(new Options([], SPECS, {}), ['a', 'b']), ['a', 'b']);
    assert.deepEqual(problemsOf(new Options([], SPECS, {})), []);
  });

  test('a missing or unparsable config file is a problem, not a crash', () => {
    const missing = join(dir, 'missing.json');
    const o1 = new Options(['--config', missing], SPECS, {});
    assert.equal(o1.problems.length, 1);
    assert.match(o1.problems[0]!, new RegExp(`^--config ${missing}: ENOENT`));
    const bad = configFile('{ not json');
    const o2 = new Options(['--config', bad, '--data-dir', '/d'], SPECS, {});
    assert.equal(o2.string('data-dir'), '/d', 'flags still work');
    assert.equal(o2.problems.length, 1);
    assert.ok(o2.problems[0]!.startsWith(`--config ${bad}: `));
  });

  test('unknown flags and unexpected positionals are usage errors at once', () => {
    assert.throws(() => new Options(['--frob'], SPECS, {}), (err: unknown) => {
      assert.ok(err instanceof FerryError);
      assert.equal(err.code, 'FERRY_USAGE');
      assert.equal(err.message, 'unknown option --frob');
      return true;
    });
    const usage = (argv: string[], message: string) => assert.throws(() => new Options(argv, SPECS, {}, { command: 'relay' }),
      (err: unknown) => isFerryError(err, 'FERRY_USAGE') && err.message === `${message} for \`ferry relay\`; see \`ferry help relay\``, argv.join(' '));
    usage(['--frob'], 'unknown option --frob');
    usage(['-q'], 'unknown option -q');
    usage(['extra'], "unexpected argument 'extra'");
    usage(['--data-dir'], '--data-dir needs a value');
    usage(['--data-dir', '--verbose'], '--data-dir needs a value');
    usage(['--verbose=yes'], '--verbose takes no value');
    assert.deepEqual(new Options(['--data-dir=-odd'], SPECS, {}).string('data-dir'), '-odd');
    assert.deepEqual(new Options(['a', '--verbose', 'b'], SPECS, {}, { allowPositionals: true }).positionals, ['a', 'b']);
  });

  test('--help or -h anywhere before -- asks for help', () => {
    assert.equal(wantsHelp(['--data-dir', 'x', '--help']), true);
    assert.equal(wantsHelp(['-h']), true);
    assert.equal(wantsHelp(['--data-dir', 'x']), false);
    assert.equal(wantsHelp(['--', '--help']), false);
  });
});

test('flagHelp lists every flag with its value, help and environment variable', () => {
  const help = flagHelp({ 'data-dir': SPECS['data-dir']!, verbose: { type: 'boolean', help: 'say more' } });
  assert.deepEqual(help.split('\n'), [
    '  --data-dir VALUE'.padEnd(34) + ' where data lives [env FERRY_DATA_DIR]',
    '  --verbose'.padEnd(34) + ' say more',
  ]);
});

describe('agent flags for a revoked device (issue #9)', () => {
  test('--revoked-retry and --exit-on-revoked set the config; by default 6 h and keep retrying', () => {
    const defaults = agentConfigFromArgs(['--state-dir', '/tmp/x'], {}).config;
    assert.equal(defaults.revokedRetryMs, 6 * 3_600_000);
    assert.equal(defaults.exitOnRevoked, false);
    const set = agentConfigFromArgs(['--state-dir', '/tmp/x', '--revoked-retry', '30m', '--exit-on-revoked'], {}).config;
    assert.equal(set.revokedRetryMs, 30 * 60_000);
    assert.equal(set.exitOnRevoked, true);
    assert.equal(agentConfigFromArgs(['--state-dir', '/tmp/x'], { FERRY_EXIT_ON_REVOKED: '1' }).config.exitOnRevoked, true);
    assert.throws(() => agentConfigFromArgs(['--state-dir', '/tmp/x', '--revoked-retry', 'soon'], {}), /--revoked-retry 'soon' is not a duration/);
  });
});

describe('agent relay endpoints and proxy flags (issue #12)', () => {
  test('--relay (FERRY_RELAY) takes a comma-separated list of HOST:PORT and wss:// endpoints', () => {
    assert.equal(agentConfigFromArgs(['--state-dir', '/tmp/x', '--relay', 'relay.test:2222, wss://relay.test/'], {}).config.relay, 'relay.test:2222, wss://relay.test/');
    assert.equal(agentConfigFromArgs(['--state-dir', '/tmp/x'], { FERRY_RELAY: 'wss://relay.test:8443/' }).config.relay, 'wss://relay.test:8443/');
    assert.throws(() => agentConfigFromArgs(['--state-dir', '/tmp/x', '--relay', 'relay.test:2222,ws://relay.test/'], {}),
      (err: unknown) => isFerryError(err, 'FERRY_CONFIG_INVALID') && /--relay: relay endpoint 'ws:\/\/relay.test\/' is plain ws:\/\//.test(err.message));
    assert.throws(() => agentConfigFromArgs(['--state-dir', '/tmp/x', '--relay', 'relay.test'], {}), /--relay: relay endpoint 'relay.test' must be HOST:PORT/);
  });

  test('--proxy (FERRY_PROXY) wins; HTTPS_PROXY and NO_PROXY are read from the environment; a bad proxy is a problem without its password', () => {
    const env = { HTTPS_PROXY: 'http://env-proxy:3128', no_proxy: '.lan' };
    assert.deepEqual(agentConfigFromArgs(['--state-dir', '/tmp/x'], env).config.proxies, { flag: null, httpsProxy: 'http://env-proxy:3128', noProxy: '.lan' });
    assert.equal(agentConfigFromArgs(['--state-dir', '/tmp/x', '--proxy', 'http://p:3128'], env).config.proxies.flag, 'http://p:3128');
    assert.equal(agentConfigFromArgs(['--state-dir', '/tmp/x'], { FERRY_PROXY: 'http://q:3128' }).config.proxies.flag, 'http://q:3128');
    assert.deepEqual(agentConfigFromArgs(['--state-dir', '/tmp/x'], {}).config.proxies, { flag: null, httpsProxy: null, noProxy: null });
    assert.throws(() => agentConfigFromArgs(['--state-dir', '/tmp/x', '--proxy', 'socks5://u:secret@p:1080'], {}),
      (err: unknown) => isFerryError(err, 'FERRY_CONFIG_INVALID') && /only to HTTP proxies/.test(err.message) && !err.message.includes('secret'));
  });
});

describe('relay session flags (issue #10)', () => {
  test('--max-sessions-per-user, --max-sessions-per-device and --session-idle-timeout set the config; by default 32, 16 and off', () => {
    const defaults = relayConfigFromArgs(['--data-dir', '/tmp/x'], {}).config;
    assert.deepEqual([defaults.maxSessionsPerUser, defaults.maxSessionsPerDevice, defaults.sessionIdleTimeoutMs], [32, 16, 0]);
    const set = relayConfigFromArgs(['--data-dir', '/tmp/x', '--max-sessions-per-user', '4', '--max-sessions-per-device', '2', '--session-idle-timeout', '30m'], {}).config;
    assert.deepEqual([set.maxSessionsPerUser, set.maxSessionsPerDevice, set.sessionIdleTimeoutMs], [4, 2, 30 * 60_000]);
    assert.equal(relayConfigFromArgs(['--data-dir', '/tmp/x', '--session-idle-timeout', 'off'], {}).config.sessionIdleTimeoutMs, 0);
    assert.equal(relayConfigFromArgs(['--data-dir', '/tmp/x', '--session-idle-timeout', '0'], {}).config.sessionIdleTimeoutMs, 0);
    assert.throws(() => relayConfigFromArgs(['--data-dir', '/tmp/x', '--max-sessions-per-user', '0'], {}), /--max-sessions-per-user '0' must be a whole number from 1/);
    assert.throws(() => relayConfigFromArgs(['--data-dir', '/tmp/x', '--session-idle-timeout', '500ms'], {}), /--session-idle-timeout must be 0 \(off\) or at least 1s/);
  });
});

describe('relay browser terminal flags (issue #11)', () => {
  test('--console-resume-window and --record-input set the config; by default 5m and off', () => {
    const defaults = relayConfigFromArgs(['--data-dir', '/tmp/x'], {}).config;
    assert.deepEqual([defaults.consoleResumeWindowMs, defaults.recordInput], [5 * 60_000, false]);
    const set = relayConfigFromArgs(['--data-dir', '/tmp/x', '--console-resume-window', '30s', '--record-input'], {}).config;
    assert.deepEqual([set.consoleResumeWindowMs, set.recordInput], [30_000, true]);
    assert.equal(relayConfigFromArgs(['--data-dir', '/tmp/x', '--console-resume-window', '0'], {}).config.consoleResumeWindowMs, 0);
    assert.throws(() => relayConfigFromArgs(['--data-dir', '/tmp/x', '--console-resume-window', 'soon'], {}), /--console-resume-window 'soon' is not a duration/);
  });
});
