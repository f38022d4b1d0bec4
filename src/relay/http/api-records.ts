/** The HTTP API's record routes: sessions (live and past), recordings and their .cast files, the audit log. */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RelayContext } from '../context.ts';
import { getRecording, listRecordings, listSessions, readAudit, showRecording, verifyAudit } from '../operations/index.ts';
import { act, Inputs } from './api-input.ts';

/** The media type of asciicast files (asciinema's own). */
const ASCIICAST_TYPE = 'application/x-asciicast';

/** Registers /api/v1/sessions, /api/v1/recordings[/:id[/cast]] and /api/v1/audit[/verify]. */
export function registerRecordRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.get('/api/v1/sessions', async (req) => {
    const i = new Inputs(req);
    const input = { live: i.queryBool('live'), device: i.query('device'), user: i.query('user'), limit: i.queryInt('limit') };
    i.done();
    return act(ctx, req, listSessions, input);
  });

  app.get('/api/v1/recordings', async (req) => {
    const i = new Inputs(req);
    const input = { device: i.query('device'), user: i.query('user'), limit: i.queryInt('limit') };
    i.done();
    return { recordings: act(ctx, req, listRecordings, input) };
  });

  app.get('/api/v1/recordings/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    new Inputs(req).done();
    return act(ctx, req, showRecording, { id: req.params.id });
  });

  app.get('/api/v1/recordings/:id/cast', async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const i = new Inputs(req);
    const download = i.queryBool('download') === true;
    i.done();
    const { recording, cast } = act(ctx, req, getRecording, { id: req.params.id });
    reply.type(ASCIICAST_TYPE);
    if (download) reply.header('content-disposition', `attachment; filename="${recording.id}.cast"`);
    // Streamed chunk by chunk: a recording may be larger than memory.
    return reply.send(Readable.from(cast));
  });

  app.get('/api/v1/audit', async (req) => {
    const i = new Inputs(req);
    const now = ctx.clock.now();
    const input = {
      user: i.query('actor'), action: i.query('action'), device: i.query('target'), since: i.queryTime('since', now), until: i.queryTime('until', now),
      beforeId: i.queryInt('before'), limit: i.queryInt('limit'),
    };
    i.done();
    return { entries: act(ctx, req, readAudit, input) };
  });

  app.get('/api/v1/audit/verify', async (req) => act(ctx, req, verifyAudit, {}));
}
