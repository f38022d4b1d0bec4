/**
 * GET /metrics: Prometheus text. The relay's own gauges and counters are read from the
 * running relay when a scrape asks (prom-client's `collect`), so nothing is counted on the
 * data path for them. Its own Registry, not prom-client's global one: two relays in one
 * process (tests) must not share or clash.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Lane } from '../admission.ts';
import type { RelaySources } from './sources.ts';

const LANES: readonly Lane[] = ['device', 'interactive'];

/** Makes the registry with every ferry metric and the default process metrics (event-loop lag among them). */
export function createMetricsRegistry(src: RelaySources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  new Gauge({ name: 'ferry_devices_online', help: 'Devices with a live link to this relay.', registers: r, collect() { this.set(src.devicesOnline()); } });
  new Gauge({ name: 'ferry_ssh_connections', help: 'SSH connections open now: device links and operators, authenticated or not.', registers: r, collect() { this.set(src.sshConnections()); } });
  new Gauge({
    name: 'ferry_ssh_handshakes_running', help: 'SSH handshakes running now, per admission lane (device: agents; interactive: operators).', labelNames: ['lane'], registers: r,
    collect() { const h = src.handshakes(); for (const lane of LANES) this.set({ lane }, h[lane].running); },
  });
  new Gauge({
    name: 'ferry_ssh_handshakes_queued', help: 'SSH connections waiting for a handshake slot, per admission lane.', labelNames: ['lane'], registers: r,
    collect() { const h = src.handshakes(); for (const lane of LANES) this.set({ lane }, h[lane].waiting); },
  });
  counter(r, 'ferry_channel_opens_total', 'Channels the relay asked devices to open (reaches through the relay).', () => src.channelStats.opened);
  counter(r, 'ferry_channel_open_failures_total', 'Channel opens that a device refused or did not answer in time.', () => src.channelStats.failed);
  counter(r, 'ferry_reaches_total', 'Reaches (operator sessions through the relay to a device) started.', () => src.sessions.totals().reaches);
  new Counter({
    name: 'ferry_reach_bytes_total', help: 'Bytes through reaches, live and ended; direction in: operator to device, out: device to operator.', labelNames: ['direction'], registers: r,
    collect() {
      const t = src.sessions.totals();
      this.reset();
      this.inc({ direction: 'in' }, t.bytesIn);
      this.inc({ direction: 'out' }, t.bytesOut);
    },
  });
  new Gauge({ name: 'ferry_reaches_live', help: 'Reaches open now.', registers: r, collect() { this.set(src.sessions.reaches().length); } });
  new Gauge({ name: 'ferry_console_sessions_live', help: 'Browser terminals open now, attached or detached.', registers: r, collect() { this.set(src.consoles.stats().live); } });
  new Gauge({ name: 'ferry_console_sessions_detached', help: 'Browser terminals whose WebSocket went away, kept for a resume (--console-resume-window).', registers: r, collect() { this.set(src.consoles.stats().detached); } });
  new Gauge({ name: 'ferry_console_output_held', help: "Browser terminals whose device output the relay holds back now (the browser's acks or the recording's disk are behind).", registers: r, collect() { this.set(src.consoles.stats().outputHeld); } });
  counter(r, 'ferry_console_sessions_total', 'Browser terminals opened since the relay started.', () => src.consoles.stats().started);
  counter(r, 'ferry_recording_bytes_total', 'Bytes written to console session recordings since the relay started.', () => src.consoles.stats().recordingBytes);
  new Gauge({ name: 'ferry_operator_connections', help: 'Authenticated operator connections open now.', registers: r, collect() { this.set(src.sessions.connections().length); } });
  return registry;
}

/** A counter whose value the relay already keeps: set from `read` at each scrape. */
function counter(registers: Registry[], name: string, help: string, read: () => number): void {
  new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
}

/** Registers /metrics on `app`, answering from `registry`. */
export function registerMetricsRoutes(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
}
