/** New connection: connect through the tunnel and wait for the service's first byte (it speaks first, as sshd does). */
import type { Scenario } from '../context.ts';
import { bannerAnswers } from '../net-probes.ts';
import type { Row } from '../results.ts';
import { fmt, median, quantile } from '../stats.ts';
import { newConnections } from '../tcp-load.ts';
import { ferryTunnel, opensshTunnel, type Tunnel } from '../tunnels.ts';

export const newConnectionScenario: Scenario = {
  name: 'new-connection',
  seconds: { quick: 9, full: 58 },
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 5;
    const count = ctx.quick ? 60 : 200;
    const tunnels: Tunnel[] = [
      await ferryTunnel(ctx, 'bench-banner', ctx.services.banner, bannerAnswers),
      await opensshTunnel(ctx, 'banner', ctx.services.banner, bannerAnswers),
    ];
    // Untimed connections first, as a relay that has served a while would be: ferry's code
    // paths are JIT-compiled over the first thousand or so (p50 falls from about 2 ms to 1.2 ms).
    const warmupMs = ctx.quick ? 1_000 : 4_000;
    for (const t of tunnels) await warmUp(t.localPort, warmupMs, 1_500);
    const p: Record<string, number[]> = {};
    const add = (key: string, v: number) => (p[key] ??= []).push(v);
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 === 0 ? tunnels : [...tunnels].reverse()) {
        const ms = await newConnections(t.localPort, count);
        add(`${t.system}-50`, quantile(ms, 0.5));
        add(`${t.system}-99`, quantile(ms, 0.99));
        ctx.log(`round ${round + 1}/${rounds}: ${t.system}: p50 ${fmt(quantile(ms, 0.5))} ms, p99 ${fmt(quantile(ms, 0.99))} ms`);
      }
    }
    const row = (q: string, target: string, met: boolean): Row => ({
      scenario: 'new connection', metric: `connect + first byte p${q}`, unit: 'ms', better: 'lower',
      ferry: p[`ferry-${q}`]!, openssh: p[`openssh-${q}`]!, target, met,
    });
    return {
      name: 'new-connection',
      rows: [
        row('50', '≤ OpenSSH', median(p['ferry-50']!) <= median(p['openssh-50']!)),
        row('99', '< 2 ms', median(p['ferry-99']!) < 2),
      ],
      notes: [
        `${count} sequential connections per round, ${rounds} rounds, after untimed ones for ${warmupMs / 1000} s (at most 1,500) per tunnel: each opens a TCP connection to the operator's \`ssh -L\` port and waits for the banner byte from the device's service, so one sample is two channel opens (operator→relay, relay→device) plus the device-side TCP connect.`,
      ],
    };
  },
};

/** Opens connections one after another for `ms` or `max` connections, whichever comes first. */
async function warmUp(port: number, ms: number, max: number): Promise<void> {
  const until = Date.now() + ms;
  for (let i = 0; i < max && Date.now() < until; i += 20) await newConnections(port, 20);
}
