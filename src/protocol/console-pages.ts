/**
 * The web console's page paths, in one list for both sides: the relay serves index.html at
 * each of them (relay/http/console-pages.ts) and the browser's router draws a page for each
 * (web/app.tsx, which must cover every one). `:name` is a path parameter.
 */
export const CONSOLE_PAGES = [
  '/',
  '/login',
  '/devices/:name',
  '/devices/:name/terminal',
  '/sessions',
  '/recordings',
  '/recordings/:id',
  '/audit',
  '/enroll',
  '/users',
  '/roles',
] as const;

/** One of the console's page paths. */
export type ConsolePage = typeof CONSOLE_PAGES[number];
