/** GET /healthz: whether this relay can do its job, for load balancers and uptime checks. */
import type { FastifyInstance } from 'fastify';
import { VERSION } from '../../protocol/version.ts';
import type { RelaySources } from './sources.ts';

/** The JSON /healthz answers with. */
export interface Health {
  ok: boolean;
  version: string;
  uptimeSeconds: number;
  devicesOnline: number;
  store: 'ok' | 'unreachable';
}

/** Registers /healthz: 200 when the store answers, 503 when it does not (the relay cannot admit anyone then). */
export function registerHealthRoutes(app: FastifyInstance, src: RelaySources): void {
  app.get('/healthz', async (_req, reply) => {
    const problem = src.storeProblem();
    const body: Health = {
      ok: problem === null,
      version: VERSION,
      uptimeSeconds: Math.floor((src.now() - src.startedAt) / 1000),
      devicesOnline: src.devicesOnline(),
      store: problem === null ? 'ok' : 'unreachable',
    };
    return reply.code(problem === null ? 200 : 503).send(body);
  });
}
