/** Throughput: bulk bytes through the tunnel to a TCP sink on the device, one stream and 8 at once. */
import type { Scenario } from '../context.ts';
import { cpuSecondsOf } from '../cpu-usage.ts';
import { sinkAnswers } from '../net-probes.ts';
import type { Row } from '../results.ts';
import { fmt, median } from '../stats.ts';
import { throughput } from '../tcp-load.ts';
import { ferryTunnel, opensshTunnel, type Tunnel } from '../tunnels.ts';

const MiB = 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 120_000;

export const throughputScenario: Scenario = {
  name: 'throughput',
  seconds: { quick: 10, full: 50 },
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 5;
    // Bytes per measurement, split over the streams: large enough that connects do not count.
    const total = (ctx.quick ? 128 : 512) * MiB;
    const tunnels: Tunnel[] = [
      await ferryTunnel(ctx, 'bench-sink', ctx.services.sink, sinkAnswers),
      await opensshTunnel(ctx, 'sink', ctx.services.sink, sinkAnswers),
    ];
    const values: Record<string, number[]> = {};
    const add = (key: string, v: number) => (values[key] ??= []).push(v);
    // CPU seconds per GiB moved, per process of each path, summed over all measurements.
    const cpu = new Map<string, number>();
    const bytes: Record<string, number> = {};
    for (const t of tunnels) await throughput(t.localPort, 1, 32 * MiB, TRANSFER_TIMEOUT_MS); // warm up
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? tunnels : [...tunnels].reverse();
      for (const streams of [1, 8]) {
        for (const t of order) {
          const cpu0 = t.processes.map((p) => cpuSecondsOf(p.pid, p.tree));
          const gbps = await throughput(t.localPort, streams, total / streams, TRANSFER_TIMEOUT_MS);
          t.processes.forEach((p, i) => cpu.set(`${t.system}: ${p.label}`, (cpu.get(`${t.system}: ${p.label}`) ?? 0) + cpuSecondsOf(p.pid, p.tree) - cpu0[i]!));
          bytes[t.system] = (bytes[t.system] ?? 0) + total;
          add(`${t.system}-${streams}`, gbps);
          ctx.log(`round ${round + 1}/${rounds}: ${t.system}, ${streams} stream(s): ${fmt(gbps)} Gbit/s`);
        }
        add(`raw-${streams}`, await throughput(ctx.services.sink, streams, total / streams, TRANSFER_TIMEOUT_MS));
      }
    }
    const row = (streams: number, metric: string): Row => ({
      scenario: 'throughput', metric, unit: 'Gbit/s', better: 'higher',
      ferry: values[`ferry-${streams}`]!, openssh: values[`openssh-${streams}`]!, target: '≥ OpenSSH',
      met: median(values[`ferry-${streams}`]!) >= median(values[`openssh-${streams}`]!),
    });
    return {
      name: 'throughput',
      rows: [row(1, 'one stream'), row(8, '8 streams')],
      notes: [
        `${total / MiB} MiB per measurement (split over the streams), ${rounds} rounds, ferry and OpenSSH alternating; the sink counts the bytes and answers after EOF.`,
        'Path: load generator → `ssh -L` (operator) → relay → device link → sink. ferry: ferry relay, `ferry agent` link. OpenSSH: sshd (direct-tcpip to its own `-R` port), `ssh -N -R`. Both hops aes128-gcm@openssh.com on both sides.',
        `CPU seconds per GiB moved (all measurements): ${[...cpu].map(([k, v]) => `${k} ${fmt(v / (bytes[k.split(':')[0]!]! / 1024 ** 3))}`).join(', ')}.`,
        `Raw loopback TCP, generator straight to the sink: ${fmt(median(values['raw-1']!))} Gbit/s one stream, ${fmt(median(values['raw-8']!))} Gbit/s 8 streams (the physical limit).`,
      ],
    };
  },
};
