/**
 * The web console in real Chromium (playwright-core, Debian's /usr/bin/chromium), against a
 * relay in this process with devices served by the agent's built-in SSH server: signing in
 * through a one-time URL (and the same URL refused the second time), a device coming online
 * on the open devices page without a reload, its terminal running `ls /` (UTF-8 both ways,
 * Ctrl+C to the shell), a window resize
 * reaching `stty size`, a reload resuming the same session with every output line, closing
 * it, a WebSocket from a page of another origin refused, and a user whose roles do not reach
 * a device seeing neither it nor its terminal. Screenshots of each page go to
 * test-artifacts/screenshots/. The login on devices is the user running the tests (root in CI).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { selfSignedCertPath, selfSignedKeyPath } from '../../src/relay/http/tls-cert.ts';
import { addRole, labelDevice } from '../../src/relay/operations/index.ts';
import { LOGIN } from '../helpers/embedded.ts';
import { eventually, fileCleanup } from '../helpers/env.ts';
import { browserSkipReason, PHONE, startConsoleFixture, waitForTerminal, type ConsoleFixture } from '../helpers/browser.ts';

const skip = browserSkipReason() ?? false;
const suite = fileCleanup(after);

/** Console reaches the relay holds for `user` now. */
function liveConsoles(c: ConsoleFixture, user: string): number {
  return c.f.relay.sessions.reaches().filter((r) => r.kind === 'console' && r.user === user).length;
}

/** Types `line` and Enter into the focused terminal. */
async function typeLine(page: Page, line: string): Promise<void> {
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/**
 * Waits until the shell reads its input: keys typed before the shell has set its terminal up
 * may be lost, as before a login prompt, so it asks again until the answer comes.
 */
async function shellReady(page: Page): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    await typeLine(page, 'echo rea""dy');
    try {
      await waitForTerminal(page, /^ready$/m, 1_000);
      return;
    } catch (err) {
      if (attempt === 10) throw err;
    }
  }
}

/** Opens device `name`'s page, asks for a terminal as LOGIN, and waits for a shell. */
async function openTerminal(c: ConsoleFixture, page: Page, name: string): Promise<void> {
  await page.goto(`${c.url}/devices/${name}`);
  await page.getByLabel('Log in as').fill(LOGIN);
  await page.getByRole('button', { name: 'Open terminal' }).click();
  await page.locator('.term-box[data-state="open"]').waitFor({ timeout: 15_000 });
  await page.locator('.term-box').click();
  await shellReady(page);
}

/** The rows of the terminal as xterm.js draws them (one element per row). */
function terminalRows(page: Page): Promise<number> {
  return page.locator('.term-box .xterm-rows > div').count();
}

describe('the web console in Chromium', { skip }, () => {
  let c: ConsoleFixture;
  let page: Page;
  before(async () => {
    c = await startConsoleFixture(suite, { devices: ['garage-cam'] });
    c.addUser('alice', ['operator']);
  });

  test('a one-time URL signs the browser in, once; the same URL again is refused and says why', async () => {
    const url = c.loginUrl('alice');
    assert.match(url, /\/login#./, 'the token travels in the fragment');
    page = await c.newPage();
    await page.goto(url);
    await page.waitForURL(`${c.url}/`);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(await page.locator('.who .user').innerText(), 'alice');
    assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');

    const again = await c.newPage();
    await again.goto(url);
    await again.getByText('This sign-in link does not work any more.').waitFor();
    assert.equal(await again.getByRole('button', { name: 'Sign out' }).count(), 0);
    await c.screenshot(again, 'login-link-refused');
    await again.goto(`${c.url}/`);
    await again.waitForURL(`${c.url}/login`);
    await c.screenshot(again, 'login');
    await again.context().close();
  });

  test('a device that comes online shows up on the open devices page without a reload', async () => {
    await page.getByRole('link', { name: 'garage-cam' }).waitFor();
    // A reload would lose this.
    await page.evaluate(() => { (window as unknown as { stayed: boolean }).stayed = true; });
    await c.device('porch-light');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'porch-light' }) });
    await row.getByText('online').waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), true, 'the page was not reloaded');
    await c.screenshot(page, 'devices');
    const phone = await c.signIn('alice', PHONE);
    await phone.getByRole('link', { name: 'porch-light' }).waitFor();
    await c.screenshot(phone, 'devices-phone');
    await phone.goto(`${c.url}/devices/porch-light`);
    await phone.getByRole('button', { name: 'Open terminal' }).waitFor();
    await c.screenshot(phone, 'device-phone');
    await phone.context().close();
  });

  test('the terminal runs `ls /` and shows its output', async () => {
    await page.goto(`${c.url}/devices/garage-cam`);
    await page.getByRole('button', { name: 'Open terminal' }).waitFor();
    await c.screenshot(page, 'device');
    await openTerminal(c, page, 'garage-cam');
    assert.match(page.url(), /\/devices\/garage-cam\/terminal\?session=[^&]+$/, 'the session id replaced the login in the address');
    await typeLine(page, 'ls /');
    const text = await waitForTerminal(page, /\betc\b[\s\S]*\busr\b|\busr\b[\s\S]*\betc\b/);
    assert.match(text, /\bproc\b/);
    assert.equal(liveConsoles(c, 'alice'), 1);
    await c.screenshot(page, 'terminal');
  });

  test('UTF-8 goes both ways (pasted with the Paste button), and Ctrl+C reaches the shell', async () => {
    // Typed keys are what a keyboard has; text beyond it comes by paste, as from a person.
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: c.url });
    await page.evaluate(() => navigator.clipboard.writeText('echo "U1 café ✓ 日本"'));
    await page.getByRole('button', { name: 'Paste' }).click();
    // The button reads the clipboard before it pastes: Enter goes once the line shows.
    await waitForTerminal(page, /echo "U1 café/);
    await page.keyboard.press('Enter');
    await waitForTerminal(page, /^U1 café ✓ 日本$/m);
    await typeLine(page, 'sleep 30; echo not-interrupted');
    await waitForTerminal(page, /sleep 30; echo not-interrupted\n?$/);
    await page.keyboard.press('Control+C');
    await typeLine(page, 'echo C1 $?');
    // 130 = 128 + SIGINT: the sleep was killed by the Ctrl+C the page sent, not by anything else.
    const text = await waitForTerminal(page, /^C1 130$/m, 10_000);
    assert.doesNotMatch(text, /^not-interrupted$/m);
  });

  test('a smaller window resizes the terminal, and `stty size` on the device says so', async () => {
    // Each answer has its own marker: the screen may still show the one before when the wait starts.
    await typeLine(page, 'clear; echo SZ1 $(stty size)');
    const before = (await waitForTerminal(page, /^SZ1 \d+ \d+$/m)).match(/^SZ1 (\d+) (\d+)$/m)!;
    const rowsBefore = await terminalRows(page);
    assert.equal(Number(before[1]), rowsBefore, 'the shell starts with the rows the terminal draws');

    await page.setViewportSize({ width: 800, height: 520 });
    await page.waitForFunction((n) => document.querySelectorAll('.term-box .xterm-rows > div').length !== n, rowsBefore);
    const rowsAfter = await terminalRows(page);
    await typeLine(page, 'clear; echo SZ2 $(stty size)');
    const after = (await waitForTerminal(page, /^SZ2 \d+ \d+$/m)).match(/^SZ2 (\d+) (\d+)$/m)!;
    assert.equal(Number(after[1]), rowsAfter, `stty's rows follow the terminal (${rowsBefore} → ${rowsAfter})`);
    assert.ok(Number(after[2]) < Number(before[2]), `fewer columns: ${before[2]} → ${after[2]}`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a reload resumes the same session, and every line printed before, during and after it is there once', async () => {
    const session = new URL(page.url()).searchParams.get('session');
    assert.ok(session);
    await typeLine(page, 'clear; for i in $(seq 1 15); do echo line-$i; sleep 0.2; done; echo all-done');
    await waitForTerminal(page, /^line-3$/m);
    await page.reload();
    await page.locator('.term-box[data-state="open"]').waitFor({ timeout: 15_000 });
    assert.equal(new URL(page.url()).searchParams.get('session'), session, 'the same session');
    const text = await waitForTerminal(page, /^all-done$/m);
    const numbers = [...text.matchAll(/^line-(\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(numbers, Array.from({ length: 15 }, (_, i) => i + 1), `every line once, in order:\n${text}`);
    assert.equal(liveConsoles(c, 'alice'), 1, 'still the one session');
  });

  test('Close session ends the shell on the device at once and says so', async () => {
    await page.getByRole('button', { name: 'Close session' }).click();
    await page.getByText('You closed the session.').waitFor();
    await eventually(() => liveConsoles(c, 'alice') === 0, 5_000, 'the console reach to end');
    assert.equal(await page.locator('.term-box').getAttribute('data-state'), 'closed');
    await c.screenshot(page, 'terminal-closed');
  });

  test('a WebSocket to the terminal from a page of another origin is refused; the console\'s own origin opens one', async (t) => {
    const dataDir = join(c.f.dir, 'relay');
    // Same host and scheme, another port: the same site, so the browser sends the session
    // cookie (SameSite=Strict) and only the Origin check stands in the way.
    const other = createServer({ cert: readFileSync(selfSignedCertPath(dataDir)), key: readFileSync(selfSignedKeyPath(dataDir)) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    t.after(() => new Promise((r) => other.close(r)));
    const otherUrl = `https://127.0.0.1:${(other.address() as AddressInfo).port}/`;
    const target = `${c.url.replace(/^https/, 'wss')}/api/v1/terminal?device=garage-cam&login=${encodeURIComponent(LOGIN)}&cols=80&rows=24`;
    // On the first frame (the relay's hello) it sends a close frame (version 1, type 0x04), which ends the session at once.
    const attempt = (p: Page) => p.evaluate((u) => new Promise<string>((resolve) => {
      const ws = new WebSocket(u);
      ws.binaryType = 'arraybuffer';
      ws.onmessage = () => { resolve('frame'); ws.send(new Uint8Array([1, 4])); ws.close(); };
      ws.onclose = (e) => resolve(`closed ${e.code}`);
    }), target);

    await page.goto(`${c.url}/`);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(await attempt(page), 'frame', 'from the console itself the socket opens and the relay says hello');
    await eventually(() => liveConsoles(c, 'alice') === 0, 10_000, 'the test session to end');

    const elsewhere = await page.context().newPage();
    await elsewhere.goto(otherUrl);
    assert.match(await attempt(elsewhere), /^closed /, 'no frame reaches the other origin');
    assert.equal(liveConsoles(c, 'alice'), 0, 'no console session was opened for it');
  });

  test('a user whose roles do not reach a device sees neither it nor its terminal', async () => {
    c.f.operate(labelDevice, { name: 'porch-light', set: { zone: 'porch' }, remove: [] });
    c.f.operate(addRole, { name: 'porch-only', devices: ['zone=porch'], logins: [LOGIN] });
    c.addUser('bob', ['porch-only']);
    const bob = await c.signIn('bob');
    await bob.getByRole('link', { name: 'porch-light' }).waitFor();
    assert.equal(await bob.getByRole('link', { name: 'garage-cam' }).count(), 0, 'garage-cam is not listed');
    await bob.getByText('1 visible to you').waitFor();

    await bob.goto(`${c.url}/devices/garage-cam`);
    await bob.getByRole('alert').waitFor();
    assert.equal(await bob.getByRole('button', { name: 'Open terminal' }).count(), 0);
    assert.doesNotMatch(await bob.locator('main').innerText(), /online|approved/, 'nothing about the device shows');

    // A link straight to a terminal (from anywhere but the device page) asks before it opens anything.
    await bob.goto(`${c.url}/devices/garage-cam/terminal?login=${encodeURIComponent(LOGIN)}`);
    await bob.getByRole('heading', { name: `Open a terminal on garage-cam as ${LOGIN}?` }).waitFor();
    assert.equal(await bob.locator('.term-box').count(), 0, 'no terminal before the click');
    await bob.getByRole('button', { name: 'Open terminal' }).click();
    await bob.locator('.term-box[data-state="failed"]').waitFor({ state: 'attached', timeout: 15_000 });
    assert.match(await bob.getByRole('alert').innerText(), /FERRY_(NOT_FOUND|PERMISSION_DENIED)/);
    assert.equal(await bob.getByRole('button', { name: 'Open a new session' }).count(), 0, 'a refusal offers no new try');
    assert.equal(liveConsoles(c, 'bob'), 0);
    await c.screenshot(bob, 'terminal-refused');
    await bob.context().close();
  });

  test('the terminal page fits a phone', async () => {
    const phone = await c.signIn('alice', PHONE);
    await openTerminal(c, phone, 'garage-cam');
    await typeLine(phone, 'echo phone $(stty size)');
    await waitForTerminal(phone, /^phone \d+ \d+$/m);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `no sideways scrolling: ${width} px wide`);
    await c.screenshot(phone, 'terminal-phone');
    await phone.getByRole('button', { name: 'Close session' }).click();
    await phone.getByText('You closed the session.').waitFor();
    await phone.context().close();
  });
});

describe('the devices page with 10,000 devices', { skip }, () => {
  let c: ConsoleFixture;
  before(async () => {
    c = await startConsoleFixture(suite);
    c.fleet(10_000, 'dev', (i) => ({ site: i % 2 === 1 ? 'lyon' : 'oslo' }));
    c.addUser('olga', ['operator']);
  });

  test('one page of rows at a time, paged, searched and filtered by the relay, with the filters in the address', async () => {
    const page = await c.newPage();
    await page.goto(c.loginUrl('olga'));
    await page.getByRole('link', { name: 'dev-00001' }).waitFor();
    // Once more, signed in: the page load, /me and one page of /devices.
    const started = Date.now();
    await page.goto(`${c.url}/`);
    await page.getByRole('link', { name: 'dev-00001' }).waitFor();
    const firstPageMs = Date.now() - started;
    const body = page.locator('table tbody tr');
    assert.equal(await body.count(), 50, 'only one page of rows in the DOM');
    await page.getByText('1–50 of 10,000').waitFor();

    await page.getByRole('button', { name: 'Next →' }).click();
    await page.getByText('51–100 of 10,000').waitFor();
    await page.getByRole('link', { name: 'dev-00051' }).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('offset'), '50');
    assert.equal(await body.count(), 50);

    await page.getByLabel('Search by name').fill('DEV-0999');
    await page.getByText('1–10 of 10').waitFor();
    assert.deepEqual(await page.locator('table tbody tr td:first-child').allInnerTexts(), Array.from({ length: 10 }, (_, i) => `dev-0999${i}`));
    assert.equal(new URL(page.url()).searchParams.get('offset'), null, 'a new search starts at the first page');

    await page.getByLabel('Labels').fill('site=lyon');
    await page.getByText('1–5 of 5').waitFor();
    assert.deepEqual(await page.locator('table tbody tr td:first-child').allInnerTexts(), ['dev-09991', 'dev-09993', 'dev-09995', 'dev-09997', 'dev-09999']);
    const url = page.url();
    assert.match(url, /q=DEV-0999/);
    assert.match(url, /label=site%3Dlyon/);
    await page.reload();
    await page.getByText('1–5 of 5').waitFor();
    await c.screenshot(page, 'devices-filtered');
    // A number for the report, not a pass mark: the page is one API call and 50 rows.
    const api = await page.evaluate(async () => { const t0 = performance.now(); await fetch('/api/v1/devices?limit=50'); return performance.now() - t0; });
    console.log(`# devices page with 10,000 devices: drawn ${firstPageMs} ms after the address was opened; one GET /api/v1/devices takes ${Math.round(api)} ms`);
    await page.context().close();
  });
});
