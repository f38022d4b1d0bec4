/** Round trip: 64-byte echoes through the tunnel, one outstanding at a time, p50 and p99. */
import type { Scenario } from '../context.ts';
import { echoAnswers } from '../net-probes.ts';
import type { Row } from '../results.ts';
import { fmt, median, quantile } from '../stats.ts';
import { roundTrips } from '../tcp-load.ts';
import { ferryTunnel, opensshTunnel, type Tunnel } from '../tunnels.ts';

export const roundTripScenario: Scenario = {
  name: 'round-trip',
  seconds: { quick: 8, full: 22 },
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 5;
    const count = ctx.quick ? 2_000 : 5_000;
    const tunnels: Tunnel[] = [
      await ferryTunnel(ctx, 'bench-echo', ctx.services.echo, echoAnswers),
      await opensshTunnel(ctx, 'echo', ctx.services.echo, echoAnswers),
    ];
    // As in new-connection: a fresh relay's echo path is not JIT-compiled yet, so each tunnel
    // first carries untimed echoes, as a relay that has served a while would have.
    const warmup = 3_000;
    for (const t of tunnels) await roundTrips(t.localPort, 0, warmup);
    const p: Record<string, number[]> = {};
    const add = (key: string, v: number) => (p[key] ??= []).push(v);
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 === 0 ? tunnels : [...tunnels].reverse()) {
        const us = await roundTrips(t.localPort, count, 200);
        add(`${t.system}-50`, quantile(us, 0.5));
        add(`${t.system}-99`, quantile(us, 0.99));
        ctx.log(`round ${round + 1}/${rounds}: ${t.system}: p50 ${fmt(quantile(us, 0.5))} µs, p99 ${fmt(quantile(us, 0.99))} µs`);
      }
      const raw = await roundTrips(ctx.services.echo, count, 200);
      add('raw-50', quantile(raw, 0.5));
    }
    const row = (q: string): Row => ({
      scenario: 'round trip', metric: `64 B echo p${q}`, unit: 'µs', better: 'lower',
      ferry: p[`ferry-${q}`]!, openssh: p[`openssh-${q}`]!, target: '≤ OpenSSH', met: median(p[`ferry-${q}`]!) <= median(p[`openssh-${q}`]!),
    });
    return {
      name: 'round-trip',
      rows: [row('50'), row('99')],
      notes: [
        `${count} timed echoes per round after 200 untimed ones (and ${warmup} untimed ones per tunnel before the first round), ${rounds} rounds; the value per round is that round's quantile, and the table gives their median and range.`,
        'Same path and ciphers as throughput (load → `ssh -L` → relay → device link → echo service).',
        `Raw loopback TCP echo without any tunnel: p50 ${fmt(median(p['raw-50']!))} µs.`,
      ],
    };
  },
};
