/**
 * The browser tests' harness (test/browser/): a relay in this process with its HTTPS listener
 * on 127.0.0.1:0 (the self-signed certificate, which the browser is told to accept), devices
 * served by the agent's built-in SSH server, relay users with roles, one-time sign-in links,
 * and Debian's Chromium driven by playwright-core. Screenshots go to
 * test-artifacts/screenshots/ (gitignored).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Agent } from '../../src/agent/agent.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { decodeToken } from '../../src/protocol/token.ts';
import { addUser, createLoginLink, createToken } from '../../src/relay/operations/index.ts';
import type { RelayConfig } from '../../src/relay/config.ts';
import { ROOT, startFixture, type Fixture } from './fixture.ts';

type After = { after(fn: () => unknown): void };

/** Debian's chromium (scripts/setup.sh installs it; CI has it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where the tests put their screenshots. */
export const SCREENSHOTS = join(ROOT, 'test-artifacts/screenshots');

/** Why the browser tests cannot run here, or null: for `test(name, { skip }, …)`. */
export function browserSkipReason(): string | null {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: install Debian's chromium package (scripts/setup.sh does)`;
  if (!existsSync(join(ROOT, 'dist/web/index.html'))) return 'the web console is not built: run `npm run build` (npm test does)';
  return null;
}

/** The viewport pages open with: a laptop screen. */
export const DESKTOP = { width: 1280, height: 800 };
/** A phone's width, which every page must work at. */
export const PHONE = { width: 375, height: 740 };

/** A relay with its console, a browser, and the ways to add what a test needs. */
export interface ConsoleFixture {
  f: Fixture;
  /** The console's base URL: https://127.0.0.1:PORT. */
  url: string;
  browser: Browser;
  /** Adds relay user `name` with `roles` (and a fresh key, which the tests never use), and pushes it to the devices. */
  addUser(name: string, roles: string[]): void;
  /** A one-time sign-in URL for `user`, as `ssh relay login` prints it. */
  loginUrl(user: string): string;
  /** A page in a fresh browser context (its own cookies and storage) that accepts the relay's certificate. */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  /** A fresh page signed in as `user` through a one-time URL, on the devices page. */
  signIn(user: string, viewport?: { width: number; height: number }): Promise<Page>;
  /** Enrols and starts device `name`, approved unless told otherwise, served by the built-in SSH server. */
  device(name: string, opts?: { approve?: boolean }): Promise<Agent>;
  /**
   * Adds `n` offline, approved devices named PREFIX-00001… straight to the store (as if each
   * had enrolled with its own key and then gone), for pages that must cope with a fleet.
   */
  fleet(n: number, prefix: string, labels?: (i: number) => Record<string, string>): void;
  /** Saves a screenshot of `page` as test-artifacts/screenshots/NAME.png; returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
}

/** Starts the relay and Chromium for one test file; `devices` are enrolled and online before it returns. Everything stops at the end. */
export async function startConsoleFixture(t: After, opts: { devices?: string[]; relay?: Partial<RelayConfig> } = {}): Promise<ConsoleFixture> {
  const f = await startFixture(t, { httpListen: { host: '127.0.0.1', port: 0 }, ...opts.relay });
  const http = f.relay.http;
  if (!http) throw new Error('the relay started without its HTTP listener');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox refuses to run as root, which CI is; the pages it loads are ours.
    args: ['--no-sandbox'],
  });
  t.after(() => browser.close());
  const pageErrors: string[] = [];
  t.after(() => {
    if (pageErrors.length > 0) throw new Error(`the console threw in the browser:\n${pageErrors.join('\n')}`);
  });

  const newPage = async (viewport = DESKTOP) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, permissions: [] });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
    return page;
  };
  const device = async (name: string, o: { approve?: boolean } = {}) => f.device(name, { approve: o.approve, config: { sshTarget: 'embedded' } });
  const loginUrl = (user: string) => createLoginUrl(f, user);
  mkdirSync(SCREENSHOTS, { recursive: true });

  const fixture: ConsoleFixture = {
    f, url: http.url, browser, newPage, device, loginUrl,
    addUser(name, roles) {
      f.operate(addUser, { name, keys: [generateKeyPair(`${name}@browser-test`).publicKey.line], roles });
      // Push the new user's grants to the devices now rather than at the store watcher's next look.
      f.relay.reconcile();
    },
    async signIn(user, viewport) {
      const page = await newPage(viewport);
      await page.goto(loginUrl(user));
      await page.waitForURL(`${http.url}/`);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
      return page;
    },
    fleet(n, prefix, labels = () => ({})) {
      const store = f.relay.store;
      store.transaction(() => {
        for (let i = 1; i <= n; i++) {
          const name = `${prefix}-${String(i).padStart(5, '0')}`;
          const token = f.operate(createToken, { name, approve: true, labels: labels(i) });
          const { claims } = decodeToken(token.token) as { claims: { id: string; secret: string } };
          store.redeemToken({
            id: claims.id, secretHash: createHash('sha256').update(claims.secret).digest(), requestedName: name, fallbackName: null,
            keyFingerprint: `SHA256:fleet-${name}`, keyLine: `ssh-ed25519 AAAAfleet${i}`, now: Date.now(),
          });
        }
      });
    },
    async screenshot(page, name) {
      const path = join(SCREENSHOTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
  for (const name of opts.devices ?? []) await device(name);
  return fixture;
}

/** The text the terminal shows (xterm.js's DOM rows), one line per row, trailing blanks trimmed. */
export async function terminalText(page: Page): Promise<string> {
  const text = await page.locator('.term-box .xterm-rows').innerText();
  return tidy(text);
}

function tidy(text: string): string {
  return text.replace(/\u00a0/g, ' ').split('\n').map((l) => l.trimEnd()).join('\n');
}

/** Waits (in the page, on each frame) until the terminal shows a match of `pattern`; fails with what it shows. */
export async function waitForTerminal(page: Page, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  try {
    await page.waitForFunction(([source, flags]) => {
      const rows = document.querySelector<HTMLElement>('.term-box .xterm-rows');
      return rows !== null && new RegExp(source, flags).test(rows.innerText.replace(/\u00a0/g, ' ').split('\n').map((l) => l.trimEnd()).join('\n'));
    }, [pattern.source, pattern.flags] as const, { timeout: timeoutMs });
  } catch (err) {
    throw new Error(`the terminal did not show ${pattern} within ${timeoutMs} ms (${(err as Error).message.split('\n')[0]}); it shows:\n${await terminalText(page)}`, { cause: err });
  }
  return terminalText(page);
}

/** A one-time sign-in URL for `user`, made as `ssh relay login` makes it (as the relay host's admin, who may name the user). */
function createLoginUrl(f: Fixture, user: string): string {
  return f.operate(createLoginLink, { user }).url;
}
