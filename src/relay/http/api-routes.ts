/** The console's HTTP API under /api/v1: every route runs one operation as the signed-in user (docs/api.md). */
import type { FastifyInstance } from 'fastify';
import type { RelayContext } from '../context.ts';
import { registerAdminRoutes } from './api-admin.ts';
import { registerDeviceRoutes } from './api-devices.ts';
import { registerRecordRoutes } from './api-records.ts';

/** Registers every API area but sign-in (web-auth.ts) and the terminal. */
export function registerApiRoutes(app: FastifyInstance, ctx: RelayContext): void {
  registerDeviceRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerRecordRoutes(app, ctx);
}
