/**
 * Recovery: how long after the relay comes back (killed, down for a second, restarted on the
 * same port) each device is reachable again, with real `ferry agent` processes on default
 * backoff against `ssh -N -R` under autossh; and the half-open case, where the relay still
 * holds the old link of a device that has come back (its old agent frozen, a new one started).
 */
import { execFileSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { hasAutossh, startOpensshRelay, startReverseTunnel, type OpensshRelay } from '../baseline-openssh.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { restartFerryAgent, startFerryAgent, startFerryRelay, type FerryRelay, type RelayOptions } from '../ferry-setup.ts';
import { bannerAnswers, freePort, until } from '../net-probes.ts';
import { connectOperator, timeUntilReachable } from '../operator-probe.ts';
import { descendants, ROOT, sleep, type Child } from '../processes.ts';
import type { Row } from '../results.ts';
import { quantile } from '../stats.ts';
import { writeSshConfig } from '../ssh-config.ts';

/** How long the relay stays down in each restart. */
const DOWNTIME_MS = 1_000;
/** The agent's backoff resets after a link has been up this long (LIMITS.backoffResetAfterMs); full mode waits it out between restarts. */
const UPTIME_BEFORE_RESTART_MS = 31_000;
/** The longest a device may take to come back before it counts as not back. */
const REACH_TIMEOUT_MS = { quick: 30_000, full: 90_000 };
/** The half-open baseline waits for sshd's ClientAlive (20 s × 3) and autossh's retry. */
const HALF_OPEN_OPENSSH_TIMEOUT_MS = 150_000;

/** Milliseconds values with timeouts counted as the timeout (so quantiles stay honest), in seconds. */
const seconds = (ms: (number | null)[], timeoutMs: number) => ms.map((v) => (v ?? timeoutMs) / 1000);

interface World {
  restart(): Promise<(number | null)[]>;
  lastUpAt: number;
}

async function ferryWorld(ctx: BenchContext, names: string[], timeoutMs: number): Promise<World & { relay: () => FerryRelay }> {
  const opts: RelayOptions = { dataDir: join(ctx.dir, 'ferry-relay'), adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir, stderrFile: openSync(join(ctx.dir, 'ferry-relay.log'), 'a') };
  let relay = await startFerryRelay(ctx.scope, opts);
  await Promise.all(names.map((n) => startFerryAgent(ctx.scope, ctx.dir, relay, n, ctx.services.banner)));
  const world = {
    lastUpAt: Date.now(),
    relay: () => relay,
    async restart() {
      await relay.child.kill9();
      await sleep(DOWNTIME_MS);
      relay = await startFerryRelay(ctx.scope, { ...opts, port: relay.port, stderrFile: openSync(join(ctx.dir, 'ferry-relay.log'), 'a') });
      const t0 = Date.now();
      const op = await connectOperator(relay.port, 'admin', ctx.operatorKey, 10_000);
      try {
        const times = await timeUntilReachable(op, names.map((host) => ({ host, port: 22 })), t0, timeoutMs);
        world.lastUpAt = Date.now();
        return times;
      } finally {
        op.end();
      }
    },
  };
  return world;
}

async function opensshWorld(ctx: BenchContext, count: number, timeoutMs: number, autossh: boolean): Promise<World & { relay: OpensshRelay; config: string }> {
  const relay = await startOpensshRelay(ctx.scope, join(ctx.dir, 'openssh-relay'), [ctx.operatorKey.pub, ctx.deviceKey.pub]);
  const config = writeSshConfig(ctx.dir, 'recovery-device', ctx.deviceKey, [{ alias: 'openssh-relay', hostName: '127.0.0.1', port: relay.port, user: 'root' }],
    [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`]);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    let p = await freePort();
    while (ports.includes(p)) p = await freePort();
    ports.push(p);
    startReverseTunnel(ctx.scope, `autossh -R ${i}`, config, 'openssh-relay', p, ctx.services.banner, autossh);
  }
  await until(async () => (await Promise.all(ports.map((p) => bannerAnswers(p)))).every(Boolean), 30_000, 'the reverse tunnels', 100);
  const world = {
    relay, config, lastUpAt: Date.now(),
    async restart() {
      await relay.kill9();
      await sleep(DOWNTIME_MS);
      await relay.restart();
      const t0 = Date.now();
      const op = await connectOperator(relay.port, 'root', ctx.operatorKey, 10_000);
      try {
        const times = await timeUntilReachable(op, ports.map((port) => ({ host: '127.0.0.1', port })), t0, timeoutMs);
        world.lastUpAt = Date.now();
        return times;
      } finally {
        op.end();
      }
    },
  };
  return world;
}

/** SIGSTOP to a process and everything below it: a device whose network vanished without a FIN. */
function freeze(child: Child): void {
  for (const pid of [child.pid, ...descendants(child.pid)]) {
    try { process.kill(pid, 'SIGSTOP'); } catch { /* gone */ }
  }
}

/** ferry half-open: freeze the running agent of `name`, start a new one from the same state dir, time until reachable. */
async function ferryHalfOpen(ctx: BenchContext, relay: FerryRelay, name: string, current: Child): Promise<{ ms: number | null; next: Child }> {
  const op = await connectOperator(relay.port, 'admin', ctx.operatorKey, 10_000);
  try {
    freeze(current);
    const t0 = Date.now();
    const next = restartFerryAgent(ctx.scope, ctx.dir, relay, name);
    const [ms] = await timeUntilReachable(op, [{ host: name, port: 22 }], t0, 30_000);
    await current.kill9();
    await next.waitFor(/"msg":"link up"/, 30_000);
    return { ms: ms ?? null, next };
  } finally {
    op.end();
  }
}

/**
 * OpenSSH half-open, on an sshd of its own: freeze autossh A and its ssh, start autossh B for
 * the same -R port, and wait for B's ssh to report the forward accepted. Not by probing the
 * port: every connection to it wakes the old session's sshd, and OpenSSH 9.2 sends ClientAlive
 * probes only after ClientAliveInterval without any activity, so probing would keep the dead
 * session (and the port) forever.
 */
async function opensshHalfOpen(ctx: BenchContext): Promise<number | null> {
  const relay = await startOpensshRelay(ctx.scope, join(ctx.dir, 'openssh-half-open'), [ctx.operatorKey.pub, ctx.deviceKey.pub]);
  const config = writeSshConfig(ctx.dir, 'half-open-device', ctx.deviceKey, [{ alias: 'openssh-relay', hostName: '127.0.0.1', port: relay.port, user: 'root' }],
    [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`]);
  const port = await freePort();
  const first = startReverseTunnel(ctx.scope, 'autossh A', config, 'openssh-relay', port, ctx.services.banner, true);
  await until(() => bannerAnswers(port), 30_000, 'the first reverse tunnel');
  freeze(first);
  const t0 = Date.now();
  const second = startReverseTunnel(ctx.scope, 'autossh B', config, 'openssh-relay', port, ctx.services.banner, true, ['-o', 'LogLevel=DEBUG1']);
  try {
    await second.waitFor(new RegExp(`remote forward success for: listen (?:[^,]*:)?${port},`), HALF_OPEN_OPENSSH_TIMEOUT_MS);
  } catch {
    return null;
  }
  const ms = Date.now() - t0;
  await until(() => bannerAnswers(port), 10_000, 'the second reverse tunnel to answer');
  return ms;
}

export const recoveryScenario: Scenario = {
  name: 'recovery',
  seconds: { quick: 15, full: 170 },
  async run(ctx) {
    const devices = ctx.quick ? 4 : 8;
    const restarts = ctx.quick ? 1 : 3;
    const halfOpenPerRound = 2;
    const timeoutMs = REACH_TIMEOUT_MS[ctx.quick ? 'quick' : 'full'];
    const autossh = hasAutossh();
    const names = Array.from({ length: devices }, (_, i) => `rec-${i}`);

    const ferry = await ferryWorld(ctx, names, timeoutMs);
    const openssh = await opensshWorld(ctx, devices, timeoutMs, autossh);
    // The half-open baseline takes a minute or more (sshd must time out the old session): run it alongside.
    const opensshHalfOpenRun = autossh && !ctx.quick ? opensshHalfOpen(ctx).catch((err: Error) => { ctx.log(`OpenSSH half-open failed: ${err.message}`); return null; }) : null;
    let halfOpenAgent = await startFerryAgent(ctx.scope, ctx.dir, ferry.relay(), 'rec-half-open', ctx.services.banner);

    const restartMs: Record<string, (number | null)[]> = { ferry: [], openssh: [] };
    const halfOpenMs: (number | null)[] = [];
    for (let round = 0; round < restarts; round++) {
      const worlds = [['ferry', ferry], ['openssh', openssh]] as const;
      for (const [system, world] of round % 2 === 0 ? worlds : [...worlds].reverse()) {
        if (system === 'openssh' && !autossh) continue;
        if (!ctx.quick) {
          // Meanwhile, the ferry half-open samples (they need the relay up, and a few seconds).
          while (system === 'ferry' && halfOpenMs.length < (round + 1) * halfOpenPerRound) {
            const r = await ferryHalfOpen(ctx, ferry.relay(), 'rec-half-open', halfOpenAgent);
            halfOpenMs.push(r.ms);
            halfOpenAgent = r.next;
          }
          await sleep(Math.max(0, world.lastUpAt + UPTIME_BEFORE_RESTART_MS - Date.now()));
        }
        const times = await world.restart();
        restartMs[system]!.push(...times);
        ctx.log(`restart ${round + 1}/${restarts}: ${system}: reachable after ${times.map((t) => (t === null ? 'never' : `${t}`)).join(', ')} ms`);
      }
    }
    if (ctx.quick) {
      for (let i = 0; i < halfOpenPerRound; i++) {
        const r = await ferryHalfOpen(ctx, ferry.relay(), 'rec-half-open', halfOpenAgent);
        halfOpenMs.push(r.ms);
        halfOpenAgent = r.next;
      }
    }
    ctx.log(`half-open, ferry: reachable after ${halfOpenMs.join(', ')} ms from the new agent's start`);
    const opensshHalfOpenMs = opensshHalfOpenRun ? await opensshHalfOpenRun : null;
    if (opensshHalfOpenRun) ctx.log(`half-open, OpenSSH + autossh: reachable after ${opensshHalfOpenMs ?? 'never'} ms`);

    const f = seconds(restartMs.ferry!, timeoutMs);
    const o = autossh ? seconds(restartMs.openssh!, timeoutMs) : null;
    const h = seconds(halfOpenMs, 30_000);
    const noAutossh = autossh ? undefined : 'OpenSSH: autossh is not installed (apt-get install autossh); plain ssh -R does not come back by itself';
    const row = (metric: string, q: number, ferryValues: number[], opensshValues: number[] | null, target?: string, missing?: string): Row => ({
      scenario: 'recovery', metric, unit: 's', better: 'lower',
      ferry: [quantile(ferryValues, q)], openssh: opensshValues ? [quantile(opensshValues, q)] : null,
      ...(target ? { target, met: quantile(ferryValues, q) <= 2 } : {}), ...(missing ? { missing } : {}),
    });
    const startup = Number(execFileSync('sh', ['-c', `s=$(date +%s%N); ${JSON.stringify(process.execPath)} bin/ferry.js --version >/dev/null; echo $(( ($(date +%s%N) - s) / 1000000 ))`], { cwd: ROOT, encoding: 'utf8' }).trim());
    const halfOpenMissing = !autossh ? noAutossh : ctx.quick ? 'OpenSSH: full mode only (it waits for sshd to time the old session out, a minute or more)' : opensshHalfOpenMs === null ? `OpenSSH + autossh: not back within ${HALF_OPEN_OPENSSH_TIMEOUT_MS / 1000} s (sshd still held the frozen session and its port)` : 'OpenSSH: one sample';
    return {
      name: 'recovery',
      rows: [
        row('relay restart → reachable p50', 0.5, f, o, undefined, noAutossh),
        // Quick mode restarts the relay before the links have been up 30 s, so the agents take
        // the drop for a flapping link and back off instead of retrying fast: no target there.
        row('relay restart → reachable p95', 0.95, f, o, ctx.quick ? undefined : 'p95 ≤ 2 s', noAutossh),
        row('half-open old link → reachable p50', 0.5, h, opensshHalfOpenMs === null ? null : [opensshHalfOpenMs / 1000], undefined, halfOpenMissing),
        row('half-open old link → reachable p95', 0.95, h, opensshHalfOpenMs === null ? null : [opensshHalfOpenMs / 1000], 'p95 ≤ 2 s', halfOpenMissing),
      ],
      notes: [
        `Relay restart: ${devices} devices per system, ${restarts} restart(s) each, alternating; the relay is killed with SIGKILL (sshd: the listener and every session), stays down ${DOWNTIME_MS / 1000} s, and comes back on the same port. The clock starts when the new relay listens and stops when an operator, logged in to the new relay, gets the device service's first byte through a channel (tried every 50 ms without waiting for earlier tries). ${f.length} ferry samples${o ? `, ${o.length} OpenSSH samples` : ''}; a device not back within ${timeoutMs / 1000} s counts as ${timeoutMs / 1000} s.`,
        `ferry: real \`ferry agent\` processes with the default backoff (full jitter, 0.5 s base, 60 s cap, reset after 30 s up)${ctx.quick ? '' : '; full mode waits until every link has been up 31 s before each restart, so each restart starts from a reset backoff'}. OpenSSH: \`autossh -M 0\` (AUTOSSH_GATETIME=0) around \`ssh -N -R\` with ExitOnForwardFailure and ServerAlive 20 s × 3; sshd has ClientAlive 20 s × 3.`,
        ...(ctx.quick ? ['Quick mode restarts the relay before the links have been up 30 s, so the agents take the drop for a flapping link and back off instead of retrying fast: the 2 s target is judged in full mode only.'] : []),
        `Half-open: the device's running agent is frozen (SIGSTOP: its TCP connection stays open, nothing answers) and a new agent process starts from the same state dir; the clock starts at that process's spawn, so it includes node + tsx startup (a bare \`ferry --version\` takes ${startup} ms here). ${h.length} ferry samples. The OpenSSH equivalent (a second autossh for the same -R port while the first is frozen) is refused until sshd's ClientAlive drops the old session.`,
      ],
    };
  },
};
