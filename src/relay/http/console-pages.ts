/**
 * The web console's files: dist/web/index.html at every page path (the browser's router draws
 * the page), and the bundle under /assets/, whose names carry a content hash, so browsers may
 * keep them for a year. Only these responses get the pages' Content-Security-Policy; every
 * other response keeps server.ts's strict one.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FerryError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { CONSOLE_PAGES } from '../../protocol/console-pages.ts';

/**
 * Where `npm run build` writes the console: dist/web/ at the package root, which is three
 * levels above this file whether it runs from src/relay/http/ (tsx) or dist/relay/http/.
 */
export const CONSOLE_ROOT = resolve(import.meta.dirname, '../../../dist/web');

/**
 * As strict as the pages allow. Scripts and styles come only from the relay. 'wasm-unsafe-eval'
 * lets asciinema-player compile its terminal emulator (WebAssembly, bundled), which is not
 * 'unsafe-eval': no JavaScript string can become code. Style elements must be allowed inline
 * because xterm.js's DOM renderer writes its cell sizes and colours into <style> elements it
 * creates (xterm.js issue 4445); with img-src, font-src and connect-src at 'self', an injected
 * style can still send nothing anywhere but the relay. connect-src 'self' covers the API, the
 * event stream and the terminal's WebSocket (wss: on the same host and port).
 */
export const PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** How long browsers keep a hashed asset: a year, the longest caches honour. */
const ASSET_MAX_AGE = '365d';

/** Where the console's files are (default: the built dist/web/) and where to say that they are missing. */
export interface ConsolePagesOptions { root?: string; log: Logger }

/** Registers the page paths and /assets/ on the app. Without a build, the page paths answer 404 saying how to build. */
export async function registerConsolePages(app: FastifyInstance, opts: ConsolePagesOptions): Promise<void> {
  const root = opts.root ?? CONSOLE_ROOT;
  const indexFile = join(root, 'index.html');
  // Read once: the page is small, and a relay serves the build it started with.
  const index = existsSync(indexFile) ? readFileSync(indexFile) : null;
  if (index === null) opts.log.warn({ root }, 'the web console is not built (no index.html): run `npm run build`; the API and /metrics work without it');

  await app.register(fastifyStatic, {
    root: join(root, 'assets'),
    prefix: '/assets/',
    // Fastify's own 404 (JSON, from server.ts) for anything that is not a file of the build.
    index: false,
    redirect: false,
    dotfiles: 'deny',
    decorateReply: false,
    maxAge: ASSET_MAX_AGE,
    immutable: true,
  });

  for (const path of CONSOLE_PAGES) {
    app.get(path, async (_req, reply) => {
      if (index === null) throw new FerryError('FERRY_NOT_FOUND', `the web console is not built on this relay: run \`npm run build\` in ${resolve(root, '../..')} (it writes ${root}), then restart the relay`);
      // The page names the current hashed assets, so it is checked with the relay every time.
      return reply.header('cache-control', 'no-cache').header('content-security-policy', PAGE_CONTENT_SECURITY_POLICY).type('text/html; charset=utf-8').send(index);
    });
  }
}
