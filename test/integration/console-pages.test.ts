/**
 * The web console's files on the relay's HTTP listener (relay/http/console-pages.ts): the one
 * page at every console path with the pages' CSP, hashed assets cached for a year, nothing
 * else served from the build, and a relay without a build saying how to make one. Real HTTP
 * requests to a listening app, over real files.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/log.ts';
import { CONSOLE_PAGES } from '../../src/protocol/console-pages.ts';
import { RELAY_DEFAULTS } from '../../src/relay/config.ts';
import { PAGE_CONTENT_SECURITY_POLICY, registerConsolePages } from '../../src/relay/http/console-pages.ts';
import { createHttpApp } from '../../src/relay/http/server.ts';
import { tempDir } from '../helpers/env.ts';

/** A listening app with the console's routes over `root`; resolves with its base URL. */
async function serve(t: { after(fn: () => unknown): void }, root: string): Promise<string> {
  const app = createHttpApp({ limits: RELAY_DEFAULTS, tls: null, log: silentLogger() });
  app.get('/api/v1/ping', async () => ({ ok: true }));
  await registerConsolePages(app, { root, log: silentLogger() });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** A build as scripts/build-web.mjs writes it: index.html and a hashed script. */
function fakeBuild(t: { after(fn: () => void): void }): string {
  const root = tempDir(t);
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>ferry console</title><script type="module" src="/assets/main-ABC123.js"></script>');
  writeFileSync(join(root, 'assets/main-ABC123.js'), 'console.log("console");');
  writeFileSync(join(root, '.hidden'), 'not for anyone');
  return root;
}

test('every console page path answers index.html with the pages\' CSP, revalidated; an API path keeps the strict CSP', async (t) => {
  const base = await serve(t, fakeBuild(t));
  const paths = CONSOLE_PAGES.map((p) => p.replace(':name', 'garage-cam').replace(':id', 'r-1'));
  for (const path of [...paths, '/login?ended=1', '/devices/garage-cam/terminal?session=abc']) {
    const r = await fetch(base + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/, path);
    assert.equal(r.headers.get('content-security-policy'), PAGE_CONTENT_SECURITY_POLICY, path);
    assert.equal(r.headers.get('cache-control'), 'no-cache', path);
    assert.match(await r.text(), /main-ABC123\.js/, path);
  }
  // The pages' policy allows no inline script, no eval and no other origin.
  assert.match(PAGE_CONTENT_SECURITY_POLICY, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
  assert.doesNotMatch(PAGE_CONTENT_SECURITY_POLICY, /'unsafe-eval'|https?:|\*/);
  assert.match(PAGE_CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/);

  const api = await fetch(`${base}/api/v1/ping`);
  assert.match(api.headers.get('content-security-policy') ?? '', /^default-src 'none'/);
  const other = await fetch(`${base}/devices/garage-cam/shell`);
  assert.equal(other.status, 404);
  assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'FERRY_NOT_FOUND');
});

test('hashed assets are cached for a year as immutable; a missing asset and a dot file are 404', async (t) => {
  const base = await serve(t, fakeBuild(t));
  const r = await fetch(`${base}/assets/main-ABC123.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /javascript/);
  assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(await r.text(), 'console.log("console");');
  for (const path of ['/assets/main-OLD.js', '/assets/../.hidden', '/assets/%2e%2e/.hidden', '/index.html']) {
    const miss = await fetch(base + path);
    assert.equal(miss.status, 404, path);
    assert.doesNotMatch(await miss.text(), /not for anyone/, path);
  }
});

test('a relay without a build answers its page paths 404 saying to run npm run build; the rest works', async (t) => {
  const base = await serve(t, join(tempDir(t), 'no-build'));
  const r = await fetch(`${base}/`);
  assert.equal(r.status, 404);
  const body = (await r.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'FERRY_NOT_FOUND');
  assert.match(body.error.message, /npm run build/);
  assert.equal((await fetch(`${base}/api/v1/ping`)).status, 200);
});
