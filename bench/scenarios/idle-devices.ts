/**
 * Idle devices: the relay's private memory per connected idle device, at 1,000 and (full
 * mode) 10,000 simulated devices, against sshd's private memory per idle `ssh -N -R` session.
 */
import { join } from 'node:path';
import { privateKiBOf, startOpensshRelay, startReverseTunnel } from '../baseline-openssh.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { startFleet } from '../fleet.ts';
import { bannerAnswers, freePort, until } from '../net-probes.ts';
import { sleep } from '../processes.ts';
import type { Row } from '../results.ts';
import { fmt } from '../stats.ts';
import { writeSshConfig } from '../ssh-config.ts';

/** Time for timers and buffers to settle before a reading. */
const SETTLE_MS = 1_000;

/** sshd's private memory per idle reverse-tunnel session, with `count` sessions. */
async function opensshPerSession(ctx: BenchContext, count: number): Promise<number> {
  const relay = await startOpensshRelay(ctx.scope, join(ctx.dir, 'openssh-idle'), [ctx.deviceKey.pub]);
  const config = writeSshConfig(ctx.dir, 'idle-device', ctx.deviceKey, [{ alias: 'openssh-relay', hostName: '127.0.0.1', port: relay.port, user: 'root' }],
    [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`]);
  await sleep(SETTLE_MS);
  const before = relay.privateKiB();
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    let port = await freePort();
    while (ports.includes(port)) port = await freePort();
    ports.push(port);
    startReverseTunnel(ctx.scope, `ssh -R idle-${i}`, config, 'openssh-relay', port, ctx.services.banner);
  }
  await until(async () => (await Promise.all(ports.map((p) => bannerAnswers(p)))).every(Boolean), 60_000, `${count} reverse tunnels to answer`, 250);
  await sleep(SETTLE_MS);
  return (relay.privateKiB() - before) / count;
}

export const idleDevicesScenario: Scenario = {
  name: 'idle-devices',
  seconds: { quick: 16, full: 50 },
  async run(ctx) {
    const steps = ctx.quick ? [1_000] : [1_000, 10_000];
    const sessions = ctx.quick ? 30 : 100;
    // The baseline is a relay that has served a few devices already: its heap has grown to
    // its working shape, so the difference is the cost of the devices, not of a first use.
    const warm = 100;
    const fleet = await startFleet(ctx, warm + steps[steps.length - 1]!);
    const reading = async () => {
      await fleet.relay.call({ op: 'gc' });
      await sleep(SETTLE_MS);
      const heap = await fleet.relay.call({ op: 'gc' }) as NodeJS.MemoryUsage;
      return { privateKiB: privateKiBOf(fleet.relay.child.pid), heapKiB: heap.heapUsed / 1024, buffersKiB: heap.arrayBuffers / 1024 };
    };
    await fleet.fill(0, warm, 60_000);
    const base = await reading();
    const perDevice: Record<number, number> = {};
    const heapPerDevice: Record<number, number> = {};
    const buffersPerDevice: Record<number, number> = {};
    const fillSeconds: Record<number, number> = {};
    let from = warm;
    for (const n of steps) {
      fillSeconds[n] = await fleet.fill(from, warm + n, 300_000);
      from = warm + n;
      const r = await reading();
      perDevice[n] = (r.privateKiB - base.privateKiB) / n;
      heapPerDevice[n] = (r.heapKiB - base.heapKiB) / n;
      buffersPerDevice[n] = (r.buffersKiB - base.buffersKiB) / n;
      ctx.log(`${n} more devices online after ${fmt(fillSeconds[n])} s; relay private memory ${fmt(perDevice[n])} KiB per device (V8 heap ${fmt(heapPerDevice[n])} KiB, Buffers ${fmt(buffersPerDevice[n])} KiB)`);
    }
    await fleet.sim({ op: 'stop' });
    const sshd = await opensshPerSession(ctx, sessions);
    ctx.log(`OpenSSH: ${fmt(sshd)} KiB of sshd private memory per idle ssh -R session (${sessions} sessions)`);
    const rows: Row[] = steps.map((n) => ({
      scenario: 'idle devices', metric: `relay memory per device at ${n.toLocaleString('en')}`, unit: 'KiB', better: 'lower',
      ferry: [perDevice[n]!], openssh: [sshd], target: '≤ 32 KiB', met: perDevice[n]! <= 32,
    }));
    if (ctx.quick) rows.push({ scenario: 'idle devices', metric: 'relay memory per device at 10,000', unit: 'KiB', better: 'lower', ferry: null, openssh: null, target: '≤ 32 KiB', missing: 'full mode only' });
    rows.push({ scenario: 'idle devices', metric: 'relay memory per device at 100,000', unit: 'KiB', better: 'lower', ferry: null, openssh: null, target: '≤ 32 KiB, still serving operators',
      missing: 'not run: the fd limit here is 20,000 per process, and 100,000 ssh2 handshakes on these 2 cores would take most of the time budget' });
    return {
      name: 'idle-devices',
      rows,
      notes: [
        `ferry: private memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) of the relay process after a forced GC with ${warm} + N simulated devices online, minus the same with ${warm}, divided by N; of that, per device, the V8 heap was ${steps.map((n) => `${fmt(heapPerDevice[n]!)} KiB at ${n}`).join(', ')} and Buffer memory ${steps.map((n) => `${fmt(buffersPerDevice[n]!)} KiB at ${n}`).join(', ')}; the rest is native (OpenSSL cipher contexts, libuv handles, malloc). Simulated devices: plain ssh2 clients in one separate process, each logging in with its own enrolled key from its own 127.10.x.y source address and sending tcpip-forward, kept up by the agent's retry loop; keys were enrolled directly through the Store API. Connecting took ${steps.map((n, i) => `${fmt(fillSeconds[n]!)} s for ${n - (i === 0 ? 0 : steps[i - 1]!)}`).join(', ')} devices.`,
        `OpenSSH: private memory of the sshd listener and all its session processes with ${sessions} idle \`ssh -N -R\` sessions minus with none, divided by ${sessions} (each session is a privileged monitor plus an unprivileged child). One reading each, so no spread.`,
      ],
    };
  },
};
