/** The HTTP API's administration routes: enrollment tokens, users and their keys, roles. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RelayContext } from '../context.ts';
import {
  addRole, addUser, addUserKey, createToken, editRole, listRoles, listTokens, listUsers, removeRole, removeUser, removeUserKey, revokeToken, setUserRoles,
  type CreatedToken, type RoleInput,
} from '../operations/index.ts';
import { act, Inputs } from './api-input.ts';

type Params<P> = FastifyRequest<{ Params: P }>;

/** Where `agentCommand` tells the agent to keep its state: the path the docs and the systemd unit use. */
const AGENT_STATE_DIR = '/var/lib/ferry-agent';

/** A created token and the command line that enrols a device with it, to copy. */
export type CreatedTokenWithCommand = CreatedToken & { agentCommand: string };

function roleInput(i: Inputs, name: string): RoleInput {
  return { name, devices: i.strings('devices'), logins: i.strings('logins'), forwards: i.strings('forwards'), actions: i.strings('actions') };
}

/** Registers /api/v1/tokens, /api/v1/users and /api/v1/roles. */
export function registerAdminRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.get('/api/v1/tokens', async (req) => {
    const i = new Inputs(req);
    const all = i.queryBool('all');
    i.done();
    return { tokens: act(ctx, req, listTokens, { all }) };
  });

  app.post('/api/v1/tokens', async (req): Promise<CreatedTokenWithCommand> => {
    const i = new Inputs(req);
    const input = { name: i.string('name') ?? null, labels: i.record('labels'), ttlMs: i.duration('ttl'), uses: i.integer('uses'), approve: i.boolean('approve') };
    i.done();
    const t = act(ctx, req, createToken, input);
    return { ...t, agentCommand: `sudo ferry agent --state-dir ${AGENT_STATE_DIR} --token ${t.token}` };
  });

  app.delete('/api/v1/tokens/:id', async (req: Params<{ id: string }>) => act(ctx, req, revokeToken, { id: req.params.id }));

  app.get('/api/v1/users', async (req) => ({ users: act(ctx, req, listUsers, {}) }));

  app.post('/api/v1/users', async (req) => {
    const i = new Inputs(req);
    const input = { name: i.string('name', true), keys: [i.string('key', true)], roles: i.strings('roles') };
    i.done();
    return act(ctx, req, addUser, input);
  });

  app.delete('/api/v1/users/:name', async (req: Params<{ name: string }>) => act(ctx, req, removeUser, { name: req.params.name }));

  app.put('/api/v1/users/:name/roles', async (req: Params<{ name: string }>) => {
    const i = new Inputs(req);
    const roles = i.strings('roles', true) ?? [];
    i.done();
    return act(ctx, req, setUserRoles, { name: req.params.name, roles });
  });

  app.post('/api/v1/users/:name/keys', async (req: Params<{ name: string }>) => {
    const i = new Inputs(req);
    const key = i.string('key', true);
    i.done();
    return act(ctx, req, addUserKey, { name: req.params.name, key });
  });

  app.delete('/api/v1/users/:name/keys/:fingerprint', async (req: Params<{ name: string; fingerprint: string }>) =>
    act(ctx, req, removeUserKey, { name: req.params.name, fingerprint: req.params.fingerprint }));

  app.get('/api/v1/roles', async (req) => ({ roles: act(ctx, req, listRoles, {}) }));

  app.post('/api/v1/roles', async (req) => {
    const i = new Inputs(req);
    const input = roleInput(i, i.string('name', true));
    i.done();
    return act(ctx, req, addRole, input);
  });

  app.put('/api/v1/roles/:name', async (req: Params<{ name: string }>) => {
    const i = new Inputs(req);
    const input = roleInput(i, req.params.name);
    i.done();
    return act(ctx, req, editRole, input);
  });

  app.delete('/api/v1/roles/:name', async (req: Params<{ name: string }>) => act(ctx, req, removeRole, { name: req.params.name }));
}
