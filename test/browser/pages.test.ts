// The console's pages other than devices and the terminal, in headless Chromium against a
// real relay with devices served by the agent's built-in SSH server (test/helpers/browser.ts):
// a console session's recording plays back with the output the session showed; an operator
// without the role sees neither the device nor its terminal (the same words as for a device
// that does not exist); a reused one-time sign-in URL is refused; an admin makes a token on
// /enroll, an agent enrols with the very command the page shows, and the admin approves it
// there; the audit page verifies the chain, and names the row after one is changed; roles and
// users are added, edited and removed from their pages and a refused form shows the relay's
// message; the sessions page shows a browser terminal's session start and end without a
// reload, and links its recording. Screenshots of each page, desktop
// (NAME.png) and 375 px wide (NAME-phone.png), go to test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startAgent } from '../../src/agent/agent.ts';
import { systemClock } from '../../src/common/clock.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import type { ConsoleSession } from '../../src/relay/console-session.ts';
import { startRecording } from '../../src/relay/recordings.ts';
import type { Principal } from '../../src/relay/principal.ts';
import { storePath } from '../../src/relay/relay.ts';
import { fileCleanup } from '../helpers/env.ts';
import { LOGIN } from '../helpers/embedded.ts';
import { testAgentConfig, testLogger } from '../helpers/fixture.ts';
import { browserSkipReason, PHONE, DESKTOP, startConsoleFixture, waitForTerminal, type ConsoleFixture } from '../helpers/browser.ts';

const suite = fileCleanup(after);
let b: ConsoleFixture;
const skip = browserSkipReason() ?? false;
/** The relay's data dir in the fixture (testRelayConfig puts it under the fixture's dir). */
const dataDir = () => join(b.f.dir, 'relay');
/** The recording the first test makes (it has output to show), for the screenshots. */
let shownRecording: string | null = null;

/** A web principal of `user`: what a signed-in browser is to the relay. */
const web = (user: string): Principal => ({ kind: 'web', user, sessionId: `pages-test-${user}`, remoteAddress: '127.0.0.1' });

before(async () => {
  if (skip) return;
  b = await startConsoleFixture(suite, { devices: ['cam', 'lab'] });
  // Roles choose devices by their labels: lab gets one that cam does not have.
  for (const cmd of [['device', 'label', 'lab', 'site=lab'], ['role', 'add', 'lab-only', '--devices', 'site=lab', '--logins', LOGIN]]) {
    const r = b.f.command(cmd);
    assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
  }
  b.addUser('ops', ['lab-only']);
});

/** Collects a console session's output as text; `until` waits for a pattern in it. */
function reader(s: ConsoleSession) {
  let text = '';
  const waiters = new Set<() => void>();
  s.output.on('data', (d: Buffer) => { text += d.toString('utf8'); for (const w of [...waiters]) w(); });
  return {
    text: () => text,
    until(pattern: RegExp, what: string, timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => { if (pattern.test(text)) { done(); resolve(); } };
        const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; output so far:\n${text}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Types until the shell echoes: keystrokes sent before the shell has set up its terminal may be dropped. */
async function shellReady(s: ConsoleSession, out: ReturnType<typeof reader>): Promise<void> {
  const timer = setInterval(() => s.write(Buffer.from('echo rea""dy\r')), 500);
  s.write(Buffer.from('echo rea""dy\r'));
  try { await out.until(/^ready\r?$/m, 'the shell'); } finally { clearInterval(timer); }
}

/**
 * A recorded console session of `user` on `device` that runs `echo MARKER`: recorded as the
 * relay records a browser terminal (output and resizes into an asciicast file, its row and
 * sha256 in the store and audit log). Returns the recording id, the marker, and what the
 * session showed.
 */
async function recordedSession(user: string, device: string): Promise<{ id: string; marker: string; shown: string }> {
  const s = await b.f.relay.openConsoleSession(web(user), device, LOGIN, { cols: 80, rows: 24, term: 'xterm-256color' });
  const rec = await startRecording({ store: b.f.relay.store, dataDir: dataDir(), clock: systemClock }, { sessionId: s.id, device, user, login: LOGIN, width: 80, height: 24, env: { TERM: 'xterm-256color' } });
  s.output.on('data', (d: Buffer) => rec.recorder.output(d));
  const out = reader(s);
  await shellReady(s, out);
  const marker = `playback-${Math.random().toString(36).slice(2, 10)}`;
  // The quotes keep the typed line from matching: only the command's own output has the marker
  // whole. The screen is cleared first, so the player's last screen shows the marker alone.
  s.write(Buffer.from(`printf '\\033[H\\033[2J'; echo play""back-${marker.slice('playback-'.length)}\r`));
  await out.until(new RegExp(marker), 'the marker');
  const ended = new Promise((r) => s.once('end', r));
  s.close();
  await ended;
  await rec.end();
  return { id: rec.id, marker, shown: out.text() };
}

test('a console recording plays back in the browser with the output the session showed, and its sha256 matches', { skip }, async () => {
  const { id, marker, shown } = await recordedSession('admin', 'cam');
  shownRecording = id;
  assert.ok(shown.includes(marker), 'the session showed the marker');
  const page = await b.signIn('admin');
  await page.goto(`${b.url}/recordings`);
  await page.getByRole('link', { name: /Play the recording of admin on cam/ }).first().click();
  await page.waitForURL(`**/recordings/${id}`);
  const term = page.locator('.ap-term');
  // Before it plays, the player shows the screen as the session left it.
  await term.getByText(marker, { exact: true }).waitFor();
  // Seeking: at the start the marker was not printed yet; at the end it is.
  await page.getByRole('button', { name: 'Start' }).click();
  await term.getByText(marker, { exact: true }).waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'End' }).click();
  await term.getByText(marker, { exact: true }).waitFor();
  const lines = (await term.innerText()).split('\n').map((l: string) => l.trimEnd());
  assert.ok(lines.includes(marker), `the player's screen has the line ${marker}:\n${lines.join('\n')}`);
  // The file the page fetched hashes to the sha256 the relay wrote when the recording ended.
  assert.equal((await page.getByTestId('hash-check').innerText()).trim(), 'matches the audited sha256');
  const download = await page.getByRole('link', { name: 'Download .cast' }).getAttribute('href');
  assert.equal(download, `/api/v1/recordings/${id}/cast?download=1`);
  await page.context().close();
});

test('an operator without the role sees neither the device in the list nor its device and terminal pages (the words of a device that does not exist)', { skip }, async () => {
  const page = await b.signIn('ops');
  await page.goto(`${b.url}/`);
  await page.getByRole('link', { name: 'lab', exact: true }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'cam', exact: true }).count(), 0, 'cam is not listed');
  const said = async (path: string) => {
    await page.goto(`${b.url}${path}`);
    // A link straight to a terminal asks first; the answer comes after the click.
    if (path.includes('/terminal')) await page.getByRole('button', { name: 'Open terminal' }).click();
    const alert = page.getByRole('alert').first();
    await alert.waitFor();
    return (await alert.innerText()).trim();
  };
  for (const [hidden, absent] of [['/devices/cam', '/devices/nosuch'], [`/devices/cam/terminal?login=${LOGIN}`, `/devices/nosuch/terminal?login=${LOGIN}`]] as const) {
    const a = await said(hidden);
    const n = await said(absent);
    assert.match(a, /not found|no device/i, a);
    assert.equal(a.replaceAll('cam', 'NAME'), n.replaceAll('nosuch', 'NAME'), `${hidden} says what ${absent} says`);
  }
  await page.context().close();
});

test('a one-time sign-in URL works once: a second use is refused with a clear message and no session', { skip }, async () => {
  const url = b.loginUrl('admin');
  const first = await b.newPage();
  await first.goto(url);
  await first.waitForURL(`${b.url}/`);
  await first.getByText('admin', { exact: true }).first().waitFor();
  const second = await b.newPage();
  await second.goto(url);
  const alert = second.getByRole('alert').first();
  await alert.waitFor();
  assert.match(await alert.innerText(), /used|expired/i);
  assert.equal((await second.request.get(`${b.url}/api/v1/me`)).status(), 401, 'the second browser has no session');
  await first.context().close();
  await second.context().close();
});

test('a sign-in link opened in a browser that is signed in already asks before it signs in as the link\'s user', { skip }, async () => {
  const page = await b.signIn('admin');
  await page.goto(b.loginUrl('ops'));
  // Someone else's link would otherwise sign this browser in as them without a word.
  await page.getByText(/This browser is signed in as admin/).waitFor();
  assert.equal((await (await page.request.get(`${b.url}/api/v1/me`)).json() as { user: string }).user, 'admin', 'nothing changed before the click');
  await page.getByRole('button', { name: 'Use the link' }).click();
  await page.waitForURL(`${b.url}/`);
  await page.getByText('ops', { exact: true }).first().waitFor();
  assert.equal((await (await page.request.get(`${b.url}/api/v1/me`)).json() as { user: string }).user, 'ops');
  await page.context().close();
});

test('an admin makes a token on /enroll, an agent enrols with the command the page shows, and the admin approves it there', { skip }, async () => {
  const page = await b.signIn('admin');
  await page.goto(`${b.url}/enroll`);
  await page.getByLabel(/Device name/).fill('newcam');
  await page.getByLabel(/Labels/).fill('site=new, kind=camera');
  await page.getByRole('button', { name: 'Create token' }).click();
  const command = (await page.getByTestId('agent-command').innerText()).trim();
  const token = command.match(/--token\s+(\S+)/)?.[1];
  assert.ok(token, `the agent command has a token: ${command}`);
  await b.screenshot(page, 'enroll-token');
  const agent = await startAgent(testAgentConfig(join(b.f.dir, 'agent-newcam'), { token, relay: `127.0.0.1:${b.f.relay.sshAddress.port}`, sshTarget: 'embedded' }), { log: testLogger('agent-newcam') });
  suite.after(() => agent.stop());
  // It appears without a reload: the page follows the relay's device events.
  const approve = page.getByRole('button', { name: 'Approve newcam' });
  await approve.waitFor({ timeout: 15_000 });
  assert.equal(b.f.relay.store.getDevice('newcam')?.status, 'pending');
  assert.deepEqual(b.f.relay.store.getDevice('newcam')?.labels, { site: 'new', kind: 'camera' });
  await b.screenshot(page, 'enroll-pending');
  await approve.click();
  await approve.waitFor({ state: 'detached' });
  assert.equal(b.f.relay.store.getDevice('newcam')?.status, 'approved');
  const row = b.f.relay.store.listAudit({ action: 'device.approve', device: 'newcam', limit: 1 })[0];
  assert.equal(row?.actor, 'admin');
  await page.context().close();
});

test('the audit page verifies the chain, and names the row once one has been changed behind the relay', { skip }, async () => {
  const page = await b.signIn('admin');
  await page.goto(`${b.url}/audit`);
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  const result = page.getByTestId('verify-result');
  await result.getByText(/Chain verified: all \d+ rows intact/).waitFor();
  await b.screenshot(page, 'audit-verified');
  // Change one row's detail in the store file, as someone with the disk could, then put it back.
  const db = new Database(storePath(dataDir()));
  try {
    const { id, detail } = db.prepare('SELECT id, detail FROM audit ORDER BY id LIMIT 1 OFFSET 2').get() as { id: number; detail: string };
    db.prepare(`UPDATE audit SET detail = json_set(detail, '$.forged', 1) WHERE id = ?`).run(id);
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await result.getByText(new RegExp(`Chain broken at row ${id}\\b`)).waitFor();
    db.prepare('UPDATE audit SET detail = ? WHERE id = ?').run(detail, id);
  } finally {
    db.close();
  }
  await page.getByRole('button', { name: 'Verify the chain' }).click();
  await result.getByText(/Chain verified/).waitFor();
  await page.context().close();
});

test('an admin adds and edits a role, adds a user, binds another role and removes the user, from their pages; a refused form shows the relay\'s message', { skip }, async () => {
  const page = await b.signIn('admin');
  await page.goto(`${b.url}/roles`);
  await page.getByText('Add a role').click();
  await page.getByLabel('Name', { exact: true }).fill('viewer');
  // Two selectors, one a line; the comma inside the second joins its terms.
  await page.getByLabel(/^Devices/).fill('site=lab\nkind=camera,env!=prod');
  await page.getByLabel(/^Logins/).fill('pi, ops');
  await page.getByRole('checkbox', { name: 'recording.read' }).check();
  await page.getByRole('button', { name: 'Add role' }).click();
  await page.locator('[data-role="viewer"]').waitFor();
  const role = b.f.relay.store.getRole('viewer');
  assert.deepEqual(role && { devices: role.devices, logins: role.logins, forwards: role.forwards, actions: role.actions },
    { devices: ['site=lab', 'kind=camera,env!=prod'], logins: ['pi', 'ops'], forwards: [], actions: ['recording.read'] });

  // Edit it: the form starts with what the role has; saving replaces the logins.
  const viewer = page.locator('[data-role="viewer"]');
  await viewer.getByRole('button', { name: 'Edit' }).click();
  await viewer.getByLabel(/^Logins/).fill('pi');
  await viewer.getByRole('button', { name: 'Save role' }).click();
  await viewer.getByRole('button', { name: 'Edit' }).waitFor();
  assert.deepEqual(b.f.relay.store.getRole('viewer')?.logins, ['pi']);
  assert.deepEqual(b.f.relay.store.getRole('viewer')?.devices, ['site=lab', 'kind=camera,env!=prod'], 'the selectors survive an edit');

  await page.goto(`${b.url}/users`);
  await page.getByText('Add a user').click();
  await page.getByLabel('Name', { exact: true }).fill('dana');
  await page.getByLabel(/Public key/).fill('ssh-ed25519 not-a-key');
  await page.getByRole('checkbox', { name: 'viewer' }).first().check();
  await page.getByRole('button', { name: 'Add user' }).click();
  const refused = page.getByRole('alert').first();
  await refused.waitFor();
  assert.match(await refused.innerText(), /key/i);
  assert.equal(b.f.relay.store.getUser('dana'), null);
  const key = generateKeyPair('dana').publicKey;
  await page.getByLabel(/Public key/).fill(key.line);
  await page.getByRole('button', { name: 'Add user' }).click();
  const card = page.locator('[data-user="dana"]');
  await card.waitFor();
  await card.getByText(key.fingerprint).waitFor();
  assert.deepEqual(b.f.relay.store.getUser('dana')?.roles, ['viewer']);
  // Bind another role, then remove the user (two steps, so one stray press removes nobody).
  await card.getByRole('checkbox', { name: 'lab-only' }).check();
  await card.getByRole('button', { name: 'Save roles' }).click();
  await card.getByText(/Roles: (lab-only, viewer|viewer, lab-only)\./).waitFor();
  assert.deepEqual(b.f.relay.store.getUser('dana')?.roles.slice().sort(), ['lab-only', 'viewer']);
  await card.getByRole('button', { name: 'Remove user' }).click();
  await card.getByRole('button', { name: 'Remove dana' }).click();
  await card.waitFor({ state: 'detached' });
  assert.equal(b.f.relay.store.getUser('dana'), null);
  await page.context().close();
});

test('the sessions page shows a browser terminal\'s session start and end without a reload, and links its recording', { skip }, async () => {
  const page = await b.signIn('admin');
  await page.goto(`${b.url}/sessions`);
  await page.getByRole('table', { name: 'Sessions' }).waitFor();
  // A terminal in another tab of the same browser: the relay records it.
  const terminal = await page.context().newPage();
  await terminal.goto(`${b.url}/devices/lab/terminal?login=${encodeURIComponent(LOGIN)}`);
  await terminal.getByRole('button', { name: 'Open terminal' }).click();
  const rows = page.getByRole('row').filter({ hasText: 'lab' });
  await rows.filter({ hasText: 'live' }).first().waitFor({ timeout: 15_000 });
  // The shell's prompt: the session has output to record.
  await waitForTerminal(terminal, /[#$]\s*$/m);
  await b.screenshot(page, 'sessions-live');
  await terminal.getByRole('button', { name: 'Close session' }).click();
  const ended = rows.filter({ hasText: 'client closed' }).first();
  await ended.waitFor({ timeout: 15_000 });
  const play = ended.getByRole('link', { name: 'Play' });
  await play.waitFor();
  const id = (await play.getAttribute('href'))?.match(/^\/recordings\/([0-9a-f]{16})$/)?.[1];
  assert.ok(id, 'the ended row links to /recordings/ID');
  const recording = b.f.relay.store.getRecording(id);
  assert.deepEqual(recording && [recording.device, recording.user, recording.login], ['lab', 'admin', LOGIN]);
  await terminal.close();
  await page.context().close();
});

test('screenshots of every page of this part, on a desktop and 375 px wide', { skip }, async () => {
  const pages = ['/sessions', '/recordings', '/audit', '/enroll', '/users', '/roles'];
  const recording = shownRecording ?? b.f.relay.store.listRecordings({ limit: 1 })[0]?.id;
  for (const width of [DESKTOP.width, PHONE.width]) {
    const page = await b.signIn('admin', width === PHONE.width ? PHONE : DESKTOP);
    for (const path of [...pages, ...(recording ? [`/recordings/${recording}`] : [])]) {
      await page.goto(`${b.url}${path}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.waitForLoadState('networkidle').catch(() => undefined);
      const name = path.startsWith('/recordings/') ? 'recording' : path.slice(1);
      await b.screenshot(page, width === PHONE.width ? `${name}-phone` : name);
      // Nothing may be wider than the window: at 375 px a page scrolls down, not sideways.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${path} at ${width} px is ${overflow} px wider than the window`);
    }
    await page.context().close();
  }
});
