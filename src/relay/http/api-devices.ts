/** The HTTP API's device routes: list (paged), one device, approve, revoke, remove, labels. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LIMITS } from '../../protocol/limits.ts';
import type { RelayContext } from '../context.ts';
import { approveDevice, labelDevice, listDevices, removeDevice, revokeDevice, showDevice, type ListDevicesInput } from '../operations/index.ts';
import { act, Inputs } from './api-input.ts';

type Named = FastifyRequest<{ Params: { name: string } }>;

/** Registers /api/v1/devices and /api/v1/devices/:name[/…]. */
export function registerDeviceRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.get('/api/v1/devices', async (req) => {
    const i = new Inputs(req);
    const online = i.queryBool('online');
    const input: ListDevicesInput = {
      q: i.query('q'), labels: i.queryLabels('label'), online, status: i.query('status') as ListDevicesInput['status'],
      offset: i.queryInt('offset') ?? 0, limit: i.queryInt('limit') ?? LIMITS.apiDefaultPageSize, onlineFirst: true,
    };
    i.done();
    const r = act(ctx, req, listDevices, input);
    return { devices: r.devices, total: r.total, visible: r.visible, offset: input.offset, limit: input.limit };
  });

  app.get('/api/v1/devices/:name', async (req: Named) => act(ctx, req, showDevice, { name: req.params.name }));
  app.post('/api/v1/devices/:name/approve', async (req: Named) => act(ctx, req, approveDevice, { name: req.params.name }));
  app.post('/api/v1/devices/:name/revoke', async (req: Named) => act(ctx, req, revokeDevice, { name: req.params.name }));
  app.delete('/api/v1/devices/:name', async (req: Named) => act(ctx, req, removeDevice, { name: req.params.name }));

  app.patch('/api/v1/devices/:name/labels', async (req: Named) => {
    const i = new Inputs(req);
    const set = i.record('set') ?? {};
    const remove = i.strings('remove') ?? [];
    i.done();
    return act(ctx, req, labelDevice, { name: req.params.name, set, remove });
  });
}
