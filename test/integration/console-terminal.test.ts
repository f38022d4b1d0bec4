// The relay's holder of a browser terminal (src/relay/console-terminal.ts), driven without
// HTTP: the real relay and agent in process, a console session to the agent's built-in
// server, and a peer in place of the WebSocket that speaks the real frames. A detached
// terminal resumes with every byte in order; a browser that stops acking stops the shell's
// output at the cap, and acks let it go on; a flood is held to the output rate; the resume window ends a terminal nobody came
// back to; a second window takes a terminal over; the shell's exit, a revocation and the
// device going offline each reach the peer as the right frame; the recording holds the
// output and the reach rows name it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, fileCleanup, makeKey } from '../helpers/env.ts';
import { LOGIN, startEmbedded, type EmbeddedFixture } from '../helpers/embedded.ts';
import { isFerryError } from '../../src/common/errors.ts';
import { parseCast } from '../../src/protocol/asciicast.ts';
import { LIMITS } from '../../src/protocol/limits.ts';
import { decodeRelayFrame, encodeClientFrame, type ClientFrame, type RelayFrame } from '../../src/protocol/terminal-frames.ts';
import type { Attachment, BrowserTerminal, TerminalPeer } from '../../src/relay/console-terminal.ts';
import type { Principal } from '../../src/relay/principal.ts';

const web = (user: string): Principal => ({ kind: 'web', user, sessionId: `test-${user}`, remoteAddress: '127.0.0.1' });

/** Small enough that a flood reaches it at once, and the resume window short enough to wait out. */
const UNACKED = 256 * 1024;
const WINDOW_MS = 1_500;

const suite = fileCleanup(after);
let e: EmbeddedFixture;

/**
 * The browser's side, as the route would adapt a WebSocket: frames arrive asynchronously
 * (as from a socket), output must come in order with no gap, and it acks what it got unless
 * told not to.
 */
class Peer implements TerminalPeer {
  readonly frames: RelayFrame[] = [];
  text = '';
  closed = false;
  paused = false;
  attachment!: Attachment;
  #decoder = new TextDecoder();
  #waiters = new Set<() => void>();

  constructor(public next = 0, public autoAck = true) {}

  send(bytes: Uint8Array): void {
    const d = decodeRelayFrame(bytes);
    assert.ok('frame' in d, `the relay sent a frame its peer cannot read: ${'problem' in d ? d.problem : ''}`);
    const f = d.frame;
    this.frames.push(f);
    if (f.type === 'output') {
      assert.equal(f.seq, this.next, 'output arrives in order with no gap and no repeat');
      this.next += f.data.length;
      this.text += this.#decoder.decode(f.data, { stream: true });
      if (this.autoAck) setImmediate(() => this.ack());
    }
    this.#wake();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#wake();
    // A WebSocket reports its close later, never inside the call that closed it.
    setImmediate(() => this.attachment.gone());
  }

  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }

  /** Sends a client frame as the browser would (asynchronously, as a socket delivers it). */
  sendFrame(f: ClientFrame): void { if (!this.closed) this.attachment.frame(encodeClientFrame(f)); }
  type(s: string): void { this.sendFrame({ type: 'input', data: new TextEncoder().encode(s) }); }
  ack(): void { this.sendFrame({ type: 'ack', seq: this.next }); }

  /** The connection dropped without a close frame (a reload, a lost network). */
  drop(): void { this.closed = true; this.attachment.gone(); }

  async until<T>(check: () => T | null | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const tryIt = () => {
        const v = check();
        if (v) { done(); resolve(v); }
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no ${what} within ${timeoutMs} ms; frames: ${JSON.stringify(this.frames.filter((f) => f.type !== 'output'))}; output so far:\n${this.text.slice(-2000)}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.#waiters.delete(tryIt); };
      this.#waiters.add(tryIt);
      tryIt();
    });
  }

  untilText(pattern: RegExp, what: string, timeoutMs?: number): Promise<RegExpMatchArray> {
    return this.until(() => this.text.match(pattern), what, timeoutMs);
  }

  #wake(): void { for (const w of [...this.#waiters]) w(); }
}

function attach(t: BrowserTerminal, peer: Peer, resume = false): Peer {
  peer.attachment = t.attach(peer, { resume });
  return peer;
}

/** Keystrokes before the shell has set up its terminal may be dropped, so it asks until the shell answers. */
async function shellReady(peer: Peer): Promise<void> {
  const timer = setInterval(() => peer.type('echo rea""dy\r'), 500);
  peer.type('echo rea""dy\r');
  try {
    await peer.untilText(/^ready\r?$/m, 'the shell');
  } finally {
    clearInterval(timer);
  }
}

const open = (user: string, device = 'cam', size = { cols: 80, rows: 24 }) => e.f.relay.consoles.open(web(user), { device, login: LOGIN, term: 'xterm-256color', ...size });

interface Row { actor: string; action: string; detail: Record<string, unknown> }
function audit(action: string): Row[] {
  const r = e.f.command(['audit', '--json', '--limit', '10000', '--action', action]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

before(async () => {
  e = await startEmbedded(suite, { cam: null, lossy: null }, { consoleUnackedBytes: UNACKED, consoleResumeWindowMs: WINDOW_MS });
  const dir = join(e.f.dir, 'terminal-keys');
  mkdirSync(dir);
  for (const cmd of [
    ['role', 'add', 'console-login', '--devices', '*', '--logins', LOGIN],
    ['user', 'add', 'alice', '--key', makeKey(dir, 'alice').pub, '--role', 'console-login'],
    ['user', 'add', 'bob', '--key', makeKey(dir, 'bob').pub, '--role', 'console-login'],
  ]) {
    const r = e.f.command(cmd);
    assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.stderr}`);
  }
  e.f.relay.reconcile();
});

test('a terminal detached mid-output resumes with every byte in order, from the ack the new socket sends', async () => {
  const t = await open('admin');
  const first = attach(t, new Peer());
  assert.deepEqual(first.frames[0], { type: 'hello', version: 1, sessionId: t.id });
  assert.ok(t.id.length >= 22, `a resume id of at least 128 bits, not '${t.id}'`);
  await shellReady(first);
  first.type('seq 1 40000; echo do""ne\r');
  // Drop the socket as soon as the numbers start: most of them come while nobody watches.
  await first.untilText(/^1000\r?$/m, 'the first numbers');
  first.drop();
  const got = first.next;
  assert.equal(t.detached, true);
  await eventually(() => t.outputBytes > got + 100_000, 10_000, 'output while detached');
  const second = attach(t, new Peer(got), true);
  assert.deepEqual(second.frames, [{ type: 'hello', version: 1, sessionId: t.id }], 'a resumed socket gets nothing before its ack');
  second.sendFrame({ type: 'ack', seq: got });
  await second.untilText(/^done\r?$/m, 'the end of the output after the resume');
  const all = first.text + second.text;
  const numbers = [...all.slice(all.indexOf('seq 1 40000')).matchAll(/^(\d+)\r?$/gm)].map((m) => Number(m[1]));
  assert.equal(numbers.length, 40000, 'every line once');
  assert.ok(numbers.every((n, i) => n === i + 1), 'in order');
  second.sendFrame({ type: 'close' });
  await second.until(() => second.closed, 'the socket closed after a close frame');
  await eventually(() => t.ended, 5_000, 'the terminal gone');
  assert.equal(audit('reach.end').find((r) => r.detail.session === t.sessionId)?.detail.why, 'client closed');
});

test("a browser that stops acking stops the shell's output at the cap; acks let it go on", async () => {
  const t = await open('admin');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  peer.autoAck = false;
  peer.ack();
  peer.type('yes\r');
  await eventually(() => t.pausedBy.includes('acks'), 10_000, 'the output held at the cap');
  // Held: nothing more is read from the device, however long the shell has been writing.
  const held = t.outputBytes;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(t.outputBytes, held, 'no output read while the browser is behind');
  assert.ok(t.unackedBytes >= UNACKED && t.unackedBytes < UNACKED + 64 * 1024, `held bytes ${t.unackedBytes} bounded by the cap plus one chunk`);
  assert.equal(peer.next, t.outputBytes, 'the peer was sent everything read');
  peer.ack();
  await eventually(() => t.outputBytes > held + UNACKED / 2, 10_000, 'output flowing again after the ack');
  peer.autoAck = true;
  peer.ack();
  peer.type('\x03');
  t.close();
  await eventually(() => t.ended, 5_000, 'the terminal gone');
});

test("a flood read at full speed is held to the output rate (consoleOutputBytesPerSecond), so it cannot take the relay's CPU", async () => {
  const t = await open('admin');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  peer.type('yes\r');
  await eventually(() => t.outputBytes > 256 * 1024, 10_000, 'the flood under way');
  const [b0, t0] = [t.outputBytes, performance.now()];
  let sawRate = false;
  const watch = setInterval(() => { sawRate ||= t.pausedBy.includes('rate'); }, 5);
  await new Promise((r) => setTimeout(r, 1_500));
  clearInterval(watch);
  const perSecond = (t.outputBytes - b0) / ((performance.now() - t0) / 1000);
  const limit = LIMITS.consoleOutputBytesPerSecond;
  assert.ok(perSecond <= limit * 1.15, `read ${Math.round(perSecond / 1024)} KiB/s, more than the ${limit / 1024} KiB/s limit`);
  assert.ok(sawRate, 'the output was held for the rate');
  peer.type('\x03');
  t.close();
  await eventually(() => t.ended, 5_000, 'the terminal gone');
});

test('a terminal nobody comes back to ends when the resume window passes, and cannot be resumed after', async () => {
  const t = await open('admin');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  const dropped = Date.now();
  peer.drop();
  await eventually(() => t.ended, WINDOW_MS + 5_000, 'the terminal ended by its window');
  assert.ok(Date.now() - dropped >= WINDOW_MS - 50, 'not before the window');
  const end = await eventually(() => audit('reach.end').find((r) => r.detail.session === t.sessionId), 5_000, 'its reach.end row');
  assert.equal(end.detail.why, 'client closed');
  assert.throws(() => e.f.relay.consoles.resume(web('admin'), t.id), (err: unknown) => isFerryError(err, 'FERRY_NOT_FOUND'));
});

test("only the same user may resume; a second window takes the terminal over and the first is told", async () => {
  const t = await open('alice');
  const first = attach(t, new Peer());
  await shellReady(first);
  assert.throws(() => e.f.relay.consoles.resume(web('bob'), t.id), (err: unknown) => isFerryError(err, 'FERRY_NOT_FOUND') && /someone else's/.test((err as Error).message));
  const again = e.f.relay.consoles.resume(web('alice'), t.id);
  assert.equal(again, t);
  const second = attach(t, new Peer(first.next), true);
  const taken = first.frames.at(-1);
  assert.ok(taken?.type === 'error' && taken.code === 'FERRY_CONFLICT' && /another window/.test(taken.message), JSON.stringify(taken));
  assert.equal(first.closed, true);
  second.ack();
  second.type('echo sec""ond\r');
  await second.untilText(/^second\r?$/m, 'output on the second window');
  assert.equal(t.detached, false, "the first window's close does not detach the second");
  t.close();
  await eventually(() => t.ended, 5_000, 'the terminal gone');
});

test('the shell exiting sends an exit frame with its status, then closes', async () => {
  const t = await open('admin');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  peer.type('exit 7\r');
  await peer.until(() => peer.closed, 'the close');
  assert.deepEqual(peer.frames.at(-1), { type: 'exit', code: 7, signal: null });
  assert.equal(t.ended, true);
});

test("a revocation sends an error frame with the tracker's reason, then closes", async () => {
  const t = await open('alice');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  assert.equal(e.f.command(['user', 'rm', 'alice']).code, 0);
  e.f.relay.reconcile();
  await peer.until(() => peer.closed, 'the close');
  const last = peer.frames.at(-1);
  assert.ok(last?.type === 'error' && last.code === 'FERRY_PERMISSION_DENIED' && last.message.includes("access revoked: user 'alice' was removed"), JSON.stringify(last));
});

test('the device going offline sends an error frame saying so, then closes', async () => {
  const t = await open('admin', 'lossy');
  const peer = attach(t, new Peer());
  await shellReady(peer);
  e.f.relay.registry.get('lossy')!.close('connection lost');
  await peer.until(() => peer.closed, 'the close');
  const last = peer.frames.at(-1);
  assert.ok(last?.type === 'error' && last.code === 'FERRY_CONNECT_FAILED' && /'lossy' went offline/.test(last.message), JSON.stringify(last));
});

test('the recording holds the output and the resize, no keystrokes; the reach rows and the tracker name it', async () => {
  const t = await open('admin', 'cam', { cols: 90, rows: 20 });
  const peer = attach(t, new Peer());
  await shellReady(peer);
  const id = t.recordingId!;
  assert.equal(e.f.relay.sessions.reaches().find((r) => r.id === t.sessionId)?.recordingId, id);
  peer.sendFrame({ type: 'resize', cols: 100, rows: 30 });
  peer.type('stty size; echo mar""ker\r');
  await peer.untilText(/^30 100\r?$/m, 'the new size');
  await peer.untilText(/^marker\r?$/m, 'the marker');
  peer.type('exit\r');
  await peer.until(() => peer.closed, 'the close');
  await e.f.relay.consoles.closed();
  const rec = e.f.relay.store.getRecording(id)!;
  assert.ok(rec.endedAt !== null && rec.sessionId === t.sessionId);
  const cast = parseCast(readFileSync(join(e.f.dir, 'relay', rec.path), 'utf8'));
  assert.deepEqual([cast.header.width, cast.header.height], [90, 20]);
  const out = cast.events.filter((ev) => ev[1] === 'o').map((ev) => ev[2]).join('');
  assert.match(out, /^marker\r?$/m);
  assert.ok(cast.events.some((ev) => ev[1] === 'r' && ev[2] === '100x30'), 'the resize');
  assert.equal(cast.events.some((ev) => ev[1] === 'i'), false, 'no keystrokes without --record-input');
  assert.equal(out, peer.text, 'the recording has exactly what the browser was sent');
  for (const action of ['reach.start', 'reach.end']) {
    assert.equal(audit(action).find((r) => r.detail.session === t.sessionId)?.detail.recording, id, `${action} names the recording`);
  }
});
