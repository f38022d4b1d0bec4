/** The console's HTTP API under /api/v1: every route runs one operation as the signed-in user (docs/api.md). */
import type { FastifyInstance } from 'fastify';
import type { RelayContext } from '../context.ts';
import { registerAdminRoutes } from './api-admin.ts';
import { registerDeviceRoutes } from './api-devices.ts';
import { registerRecordRoutes } from './api-records.ts';
import { registerEventRoutes } from './events-routes.ts';

/** Registers every API area but sign-in (web-auth.ts) and the terminal. */
export function registerApiRoutes(app: FastifyInstance, ctx: RelayContext): void {
  // A POST or DELETE without a body but with the JSON content type (what a generic fetch
  // wrapper or `curl -H content-type:…` sends) is no body, not an error; a body is still
  // parsed by Fastify's own parser, which refuses __proto__ and bad JSON.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') return done(null, undefined);
    return json(req, body as string, done);
  });
  registerDeviceRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerRecordRoutes(app, ctx);
  registerEventRoutes(app, ctx);
}
