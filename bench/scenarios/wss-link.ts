/**
 * The WebSocket link: the same tunnel as throughput and round trip, with the agent's link
 * inside a WebSocket (wss://relay/v1/agent, TLS over the relay's HTTPS listener) against the
 * agent's plain TCP link, in the same run. Both relays serve HTTPS, so the only difference is
 * the link's transport. In the table the "ferry" column is the wss link and the "OpenSSH"
 * column is ferry's own TCP link: the ratio is wss over TCP.
 */
import type { Scenario } from '../context.ts';
import { echoAnswers, sinkAnswers } from '../net-probes.ts';
import type { Row } from '../results.ts';
import { fmt, median, quantile } from '../stats.ts';
import { roundTrips, throughput } from '../tcp-load.ts';
import { ferryTunnel, type Tunnel } from '../tunnels.ts';

const MiB = 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 120_000;

export const wssLinkScenario: Scenario = {
  name: 'wss-link',
  seconds: { quick: 14, full: 45 },
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 5;
    const total = (ctx.quick ? 128 : 512) * MiB;
    const echoes = ctx.quick ? 2_000 : 5_000;
    const make = async (link: 'tcp' | 'wss') => ({
      link,
      sink: await ferryTunnel(ctx, `wss-${link}-sink`, ctx.services.sink, sinkAnswers, link),
      echo: await ferryTunnel(ctx, `wss-${link}-echo`, ctx.services.echo, echoAnswers, link),
    });
    const paths: { link: 'tcp' | 'wss'; sink: Tunnel; echo: Tunnel }[] = [await make('wss'), await make('tcp')];
    for (const p of paths) {
      await throughput(p.sink.localPort, 1, 32 * MiB, TRANSFER_TIMEOUT_MS);
      await roundTrips(p.echo.localPort, 0, 3_000);
    }
    const v: Record<string, number[]> = {};
    const add = (key: string, x: number) => (v[key] ??= []).push(x);
    for (let round = 0; round < rounds; round++) {
      for (const p of round % 2 === 0 ? paths : [...paths].reverse()) {
        for (const streams of [1, 8]) add(`${p.link}-${streams}`, await throughput(p.sink.localPort, streams, total / streams, TRANSFER_TIMEOUT_MS));
        const us = await roundTrips(p.echo.localPort, echoes, 200);
        add(`${p.link}-p50`, quantile(us, 0.5));
        add(`${p.link}-p99`, quantile(us, 0.99));
        ctx.log(`round ${round + 1}/${rounds}: ${p.link} link: ${fmt(v[`${p.link}-1`]!.at(-1)!)} / ${fmt(v[`${p.link}-8`]!.at(-1)!)} Gbit/s, echo p50 ${fmt(quantile(us, 0.5))} µs`);
      }
    }
    const row = (key: string, metric: string, unit: string, better: 'higher' | 'lower'): Row => {
      const wss = median(v[`wss-${key}`]!);
      const tcp = median(v[`tcp-${key}`]!);
      const ok = better === 'higher' ? wss >= 0.8 * tcp : wss <= tcp / 0.8;
      return { scenario: 'wss link', metric, unit, better, ferry: v[`wss-${key}`]!, openssh: v[`tcp-${key}`]!, target: better === 'higher' ? '≥ 0.8× the TCP link' : '≤ 1.25× the TCP link', met: ok };
    };
    return {
      name: 'wss-link',
      rows: [
        row('1', 'one stream, wss vs TCP link', 'Gbit/s', 'higher'),
        row('8', '8 streams, wss vs TCP link', 'Gbit/s', 'higher'),
        row('p50', '64 B echo p50, wss vs TCP link', 'µs', 'lower'),
        row('p99', '64 B echo p99, wss vs TCP link', 'µs', 'lower'),
      ],
      notes: [
        'In these rows the "ferry" column is the agent linked over wss:// (SSH inside a WebSocket inside TLS, on the relay\'s HTTPS listener) and the "OpenSSH" column is the agent linked over TCP to the SSH port; ratio wss/TCP. A round-trip ratio of 1.25 (lower is better) is the same 0.8 target.',
        `${total / MiB} MiB per throughput measurement, ${echoes} echoes per round, ${rounds} rounds alternating; otherwise as the throughput and round-trip scenarios (aes128-gcm on both SSH hops; the link's TLS is Node's default, TLS 1.3 with AES-GCM).`,
      ],
    };
  },
};
