/**
 * Console flood: two browser terminals over real WebSockets (TLS, a real sign-in) to two
 * devices' built-in servers on one relay. One runs `yes` at full speed; the other runs a
 * byte echo (`stty raw -echo; cat`) and measures keystroke-to-echo latency. Compares the
 * echo's p50/p99 and the relay's RSS without the flood, with the flood read by a browser
 * that keeps up, and with a browser that stopped reading (no acks: the relay holds the
 * output at its cap and the shell blocks). There is no OpenSSH counterpart to a browser
 * terminal, so the rows have only ferry's side.
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { connectTerminal, signIn, type TerminalClient } from '../../test/helpers/console-client.ts';
import type { Scenario } from '../context.ts';
import type { FloodRequest } from '../children/flood-terminal.ts';
import { startFerryAgent, startFerryRelay, type FerryRelay } from '../ferry-setup.ts';
import { ipcCaller, nodeArgs, sleep, startChild, withTimeout } from '../processes.ts';
import type { Row } from '../results.ts';
import { fmt, quantile } from '../stats.ts';

const MiB = 1024 * 1024;
/** One echo may take this long before the run is abandoned. */
const ECHO_TIMEOUT_MS = 10_000;

async function open(relay: FerryRelay, cookie: string, device: string): Promise<TerminalClient> {
  const login = userInfo().username;
  const t = await connectTerminal(relay.httpUrl!, `device=${device}&login=${encodeURIComponent(login)}&cols=120&rows=40`, { cookie });
  if (!('ws' in t)) throw new Error(`the relay refused the terminal: ${t.status} ${t.body}`);
  await t.until(() => t.sessionId, 'hello');
  await t.shellReady();
  return t;
}

/** `count` one-byte echoes, one outstanding at a time: microseconds each. */
async function echoes(t: TerminalClient, count: number): Promise<number[]> {
  const us: number[] = [];
  for (let i = 0; i < count; i++) {
    const byte = 97 + (i % 26);
    const started = process.hrtime.bigint();
    await withTimeout(new Promise<void>((resolve) => {
      t.onOutput = (data) => { if (data.includes(byte)) resolve(); };
      t.type(new Uint8Array([byte]));
    }), ECHO_TIMEOUT_MS, 'a console echo');
    us.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  t.onOutput = null;
  return us;
}

/** What the relay's heap and buffers hold after a forced GC: memory kept, not garbage waiting. */
async function retained(relay: FerryRelay): Promise<number> {
  const m = (await relay.call({ op: 'gc' })) as NodeJS.MemoryUsage;
  return m.heapUsed + m.external;
}

/** The relay's event-loop delay (ms) since the last call. */
async function loopDelay(relay: FerryRelay): Promise<{ p50: number; p99: number; max: number }> {
  return (await relay.call({ op: 'loop-delay' })) as { p50: number; p99: number; max: number };
}

/** The relay's RSS now (no forced GC: what the machine carries). */
async function rss(relay: FerryRelay): Promise<number> {
  return ((await relay.call({ op: 'memory' })) as NodeJS.MemoryUsage).rss;
}

/** Samples the relay's RSS every 100 ms while `work` runs: the highest seen. */
async function peakRss(relay: FerryRelay, work: Promise<unknown>): Promise<number> {
  let peak = await rss(relay);
  let done = false;
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, await rss(relay));
      await sleep(100);
    }
  })();
  try {
    await work;
  } finally {
    done = true;
    await sampler;
  }
  return peak;
}

export const consoleFloodScenario: Scenario = {
  name: 'console-flood',
  seconds: { quick: 40, full: 90 },
  async run(ctx) {
    const count = ctx.quick ? 500 : 2_000;
    const floodMs = ctx.quick ? 5_000 : 15_000;
    const relay = await startFerryRelay(ctx.scope, { dataDir: join(ctx.dir, 'relay'), adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir, http: true });
    await startFerryAgent(ctx.scope, ctx.dir, relay, 'flood', 'embedded', ctx.profileDir);
    await startFerryAgent(ctx.scope, ctx.dir, relay, 'quiet', 'embedded', ctx.profileDir);
    const cookie = await signIn(relay.httpUrl!, (await relay.call({ op: 'login', user: 'admin' })) as string);
    const quiet = await open(relay, cookie, 'quiet');
    // The flooding terminal is another process, as another browser tab is: its frames must not share the event loop that times the echoes.
    const floodChild = startChild(ctx.scope, 'flood-terminal', process.execPath, nodeArgs('bench/children/flood-terminal.ts'), {
      ipc: true, env: { FERRY_BENCH_FLOOD: JSON.stringify({ base: relay.httpUrl, cookie, device: 'flood', login: userInfo().username }) },
    });
    await withTimeout(new Promise<void>((resolve) => floodChild.proc.on('message', (m: { type?: string }) => { if (m.type === 'ready') resolve(); })), 30_000, 'the flood terminal to start');
    const flood = ipcCaller<FloodRequest>(floodChild, 30_000);
    quiet.type('stty raw -echo; exec cat\r');
    await sleep(500);
    // Untimed echoes first, so that the calm phase does not measure a path still being JIT-compiled.
    await echoes(quiet, 1_000);

    const retainedBefore = await retained(relay);
    const rssBefore = await rss(relay);
    await loopDelay(relay);
    const calm = await echoes(quiet, count);
    const calmLoop = await loopDelay(relay);
    ctx.log(`no flood: echo p50 ${fmt(quantile(calm, 0.5))} µs, p99 ${fmt(quantile(calm, 0.99))} µs, relay RSS ${fmt(rssBefore / MiB)} MiB`);

    // A browser that keeps up: it acks as output arrives.
    const floodStart = (await flood({ op: 'bytes' })) as number;
    const startedAt = Date.now();
    await flood({ op: 'start' });
    let floodEchoes: number[] = [];
    let retainedEarly = 0;
    let floodLoop = { p50: 0, p99: 0, max: 0 };
    const keptUpPeak = await peakRss(relay, (async () => {
      await sleep(1_000);
      // Once the flood is under way: what the relay holds then is in flight (windows, buffers); it must not grow from there.
      retainedEarly = await retained(relay);
      await loopDelay(relay);
      floodEchoes = await echoes(quiet, count);
      floodLoop = await loopDelay(relay);
      const left = floodMs - (Date.now() - startedAt);
      if (left > 0) await sleep(left);
    })());
    const floodRate = ((await flood({ op: 'bytes' })) as number - floodStart) / ((Date.now() - startedAt) / 1000);
    const retainedKeptUp = await retained(relay);
    ctx.log(`flood read by the browser: ${fmt(floodRate / MiB)} MiB/s; echo p50 ${fmt(quantile(floodEchoes, 0.5))} µs, p99 ${fmt(quantile(floodEchoes, 0.99))} µs; relay RSS peak ${fmt(keptUpPeak / MiB)} MiB`);

    // A browser that stopped reading: no more acks. The relay holds its cap, then the shell blocks.
    const stalledFrom = (await flood({ op: 'stall' })) as number;
    let stalledEchoes: number[] = [];
    const stalledPeak = await peakRss(relay, (async () => {
      await sleep(1_000);
      stalledEchoes = await echoes(quiet, count);
      await sleep(ctx.quick ? 1_000 : 5_000);
    })());
    const heldBytes = (await flood({ op: 'bytes' })) as number - stalledFrom;
    const retainedStalled = await retained(relay);
    ctx.log(`flood not acked: ${fmt(heldBytes / 1024)} KiB sent past the last ack, then held; echo p50 ${fmt(quantile(stalledEchoes, 0.5))} µs, p99 ${fmt(quantile(stalledEchoes, 0.99))} µs; relay RSS peak ${fmt(stalledPeak / MiB)} MiB`);
    await flood({ op: 'ack' });
    await floodChild.stop();
    quiet.send({ type: 'close' });

    const none = { openssh: null, missing: 'a browser terminal has no OpenSSH counterpart' };
    const row = (metric: string, unit: string, v: number, better: Row['better'] = 'lower', target?: string, met?: boolean): Row => ({
      scenario: 'console flood', metric, unit, better, ferry: [v], ...none, ...(target ? { target, met } : {}),
    });
    const ratio = (a: number[], b: number[], q: number) => quantile(a, q) / quantile(b, q);
    return {
      name: 'console-flood',
      rows: [
        row('echo p50, no flood', 'µs', quantile(calm, 0.5)),
        row('echo p99, no flood', 'µs', quantile(calm, 0.99)),
        row('echo p50, flood read', 'µs', quantile(floodEchoes, 0.5), 'lower', '≤ 2× no flood', ratio(floodEchoes, calm, 0.5) <= 2),
        row('echo p99, flood read', 'µs', quantile(floodEchoes, 0.99)),
        row('echo p50, flood not acked', 'µs', quantile(stalledEchoes, 0.5), 'lower', '≤ 2× no flood', ratio(stalledEchoes, calm, 0.5) <= 2),
        row('echo p99, flood not acked', 'µs', quantile(stalledEchoes, 0.99)),
        row('flood read by the browser', 'MiB/s', floodRate / MiB, 'higher'),
        row('relay RSS growth, flood read', 'MiB', (keptUpPeak - rssBefore) / MiB, 'lower', '≤ 64 MiB', keptUpPeak - rssBefore <= 64 * MiB),
        row('relay RSS growth, flood not acked', 'MiB', (stalledPeak - rssBefore) / MiB, 'lower', '≤ 64 MiB', stalledPeak - rssBefore <= 64 * MiB),
        row('relay heap+buffers kept after GC, flood read', 'MiB', (retainedKeptUp - retainedBefore) / MiB, 'lower', '≤ 8 MiB (in flight)', retainedKeptUp - retainedBefore <= 8 * MiB),
        row('  change after the flood\'s first second', 'MiB', (retainedKeptUp - retainedEarly) / MiB),
        row('relay heap+buffers kept after GC, flood not acked', 'MiB', (retainedStalled - retainedBefore) / MiB),
        row('output sent past the last ack', 'KiB', heldBytes / 1024, 'lower', '≤ 1 MiB cap + 64 KiB', heldBytes <= MiB + 64 * 1024),
        row('relay event-loop delay p99, no flood', 'ms', calmLoop.p99),
        row('relay event-loop delay max, no flood', 'ms', calmLoop.max),
        row('relay event-loop delay p99, flood read', 'ms', floodLoop.p99),
        row('relay event-loop delay max, flood read', 'ms', floodLoop.max),
      ],
      notes: [
        `Two devices (real \`ferry agent --ssh-target embedded\` processes) on one relay process, both terminals signed in as admin over TLS WebSockets, the quiet one from the bench process, the flooding one from a process of its own (bench/children/flood-terminal.ts), as two browser tabs would be. ${count} one-byte echoes (\`stty raw -echo; cat\` on the quiet device), one outstanding at a time, per phase.`,
        `The flood is \`yes\` for ${fmt(floodMs / 1000)} s; "read": the client acks as output arrives, as the console page does, and the relay holds the terminal to its output rate (LIMITS.consoleOutputBytesPerSecond, 2 MiB/s); "not acked": it stops acking, so the relay stops reading the flooding shell at its cap (LIMITS.consoleUnackedBytes, 1 MiB).`,
        `Relay RSS before the flood ${fmt(rssBefore / MiB)} MiB (no forced GC); growth is the peak sampled every 100 ms during a phase minus that (garbage included). "Kept after GC" is the relay's heapUsed + external after a forced GC at the end of the phase, minus the same before the flood: what it holds. While the flood runs that is data in flight (two SSH channel windows, the unacked output, the recorder's buffer, socket and TLS buffers), bounded by what those hold (about 8 MiB), whatever the flood's length; its change after the flood's first second shows that it does not grow with it.`,
        '"Sent past the last ack" counts from the client\'s last ack, which may be up to 32 KiB behind what it had (it acks every 32 KiB), plus the chunk that crossed the cap.',
        `Median over median: echo p50 with the flood read is ${fmt(ratio(floodEchoes, calm, 0.5))}× the calm one, not acked ${fmt(ratio(stalledEchoes, calm, 0.5))}×.`,
      ],
    };
  },
};
