/**
 * GET /api/v1/terminal, upgraded to a WebSocket: the browser terminal. Binary messages only,
 * each one frame of protocol/terminal-frames.ts. `?device=NAME&login=L&cols=C&rows=R[&term=T]`
 * opens a new console session; `?session=ID` resumes one (console-terminal.ts holds it).
 * The Origin and the session cookie are checked, and the query read, BEFORE the upgrade
 * (Fastify's preValidation runs before @fastify/websocket upgrades): a refused request gets a
 * plain 401/403/400/404 and never becomes a WebSocket. Failures after the upgrade (the
 * policy, the device) reach the browser as an error frame, then a close.
 */
import fastifyWebsocket from '@fastify/websocket';
import { EventEmitter } from 'node:events';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { FerryError, isFerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { encodeRelayFrame, terminalSizeProblem } from '../../protocol/terminal-frames.ts';
import type { Attachment, BrowserTerminal, TerminalPeer } from '../console-terminal.ts';
import type { RelayContext } from '../context.ts';
import { upgradeGate } from './upgrade-gate.ts';
import type { Principal } from '../principal.ts';

/** The route's path. */
export const TERMINAL_PATH = '/api/v1/terminal';

/** A web console session's principal. */
type WebPrincipal = Extract<Principal, { kind: 'web' }>;

/** What the route needs of the console's sign-in (web-auth.ts): who the cookie names, and whether the Origin is the console's own. */
export interface TerminalAuth {
  webPrincipal(req: FastifyRequest): WebPrincipal | null;
  originAllowed(req: FastifyRequest): boolean;
}

/** The TERM a new terminal gets when the browser names none (xterm.js emulates it). */
const DEFAULT_TERM = 'xterm-256color';

/** What an accepted upgrade asks for: a new terminal, or one to resume. */
type Plan =
  | { principal: WebPrincipal; kind: 'new'; device: string; login: string; cols: number; rows: number; term: string }
  | { principal: WebPrincipal; kind: 'resume'; terminal: BrowserTerminal };

/** The plan of each accepted request, from its preValidation hook to its handler. */
const plans = new WeakMap<FastifyRequest, Plan>();

/** Reads the query of an upgrade request; throws FERRY_USAGE saying what is missing or wrong. */
function readQuery(q: Record<string, unknown>): { session: string } | { device: string; login: string; cols: number; rows: number; term: string } {
  const one = (name: string): string | null => {
    const v = q[name];
    if (v === undefined) return null;
    if (typeof v !== 'string') throw new FerryError('FERRY_USAGE', `give ${name} once, not ${Array.isArray(v) ? v.length : 'several'} times`);
    return v;
  };
  const session = one('session');
  if (session !== null) return { session };
  const device = one('device');
  const login = one('login');
  if (!device || !login) throw new FerryError('FERRY_USAGE', `${TERMINAL_PATH} needs ?device=NAME&login=LOGIN&cols=C&rows=R for a new terminal, or ?session=ID to resume one`);
  const cols = Number(one('cols') ?? NaN);
  const rows = Number(one('rows') ?? NaN);
  const problem = terminalSizeProblem(cols, rows);
  if (problem) throw new FerryError('FERRY_USAGE', `the terminal size is wrong: ${problem}`);
  return { device, login, cols, rows, term: one('term') ?? DEFAULT_TERM };
}

/** Registers the WebSocket plugin and the terminal route on `app`. */
export function registerTerminalRoutes(app: FastifyInstance, ctx: RelayContext, auth: TerminalAuth): void {
  // The plugin hears only the upgrades the gate passes on: GET of the terminal's path.
  const upgrades = new EventEmitter();
  upgradeGate(app.server).route(TERMINAL_PATH, (req, socket, head) => upgrades.emit('upgrade', req, socket, head));
  // In a scope of its own: the plugin's hooks then apply to this route only.
  void app.register(async (scope) => {
    await scope.register(fastifyWebsocket, {
      // One frame per message, and no frame is larger; no compression (a compressed flood would
      // cost the relay CPU to inflate). `server`: where the plugin listens for upgrades (the gate above).
      options: { maxPayload: LIMITS.maxTerminalFrameBytes, perMessageDeflate: false, server: upgrades as never },
    });
    scope.get(TERMINAL_PATH, {
      websocket: true,
      preValidation: async (req) => {
        if (!auth.originAllowed(req)) {
          throw new FerryError('FERRY_PERMISSION_DENIED', `a terminal opens only from the console's own pages: this request came from ${JSON.stringify(req.headers.origin ?? 'no Origin')}`);
        }
        const principal = auth.webPrincipal(req);
        if (!principal) throw new FerryError('FERRY_AUTH_REFUSED', "sign in first: run 'ssh relay login' and open the URL it prints");
        if (req.headers.upgrade?.toLowerCase() !== 'websocket') throw new FerryError('FERRY_USAGE', `${TERMINAL_PATH} is a WebSocket: connect with a WebSocket client`);
        const q = readQuery(req.query as Record<string, unknown>);
        // A resume is looked up now, so that someone else's or an ended id is a plain 404 and no socket.
        plans.set(req, 'session' in q ? { principal, kind: 'resume', terminal: ctx.consoles.resume(principal, q.session) } : { principal, kind: 'new', ...q });
      },
    }, (socket, req) => serve(ctx, socket, plans.get(req)!));
  });
}

/** Runs one accepted terminal socket: attaches it (opening the session first when new), relays its frames, pings it. */
function serve(ctx: RelayContext, socket: WebSocket, plan: Plan): void {
  const log = ctx.log.child({ user: plan.principal.user, remote: plan.principal.remoteAddress });
  let attachment: Attachment | null = null;
  let closed = false;
  const peer: TerminalPeer = {
    send: (frame) => { if (socket.readyState === socket.OPEN) socket.send(frame, { binary: true }); },
    // A peer that has not read what was sent (a taken-over or stalled window) is cut off, not
    // closed politely: that would keep its unread output for ws's close timeout, per socket.
    close: () => { if (socket.bufferedAmount > LIMITS.maxTerminalFrameBytes) socket.terminate(); else socket.close(1000); },
  };
  const refuse = (err: unknown) => {
    const known = isFerryError(err);
    if (!known) log.error({ err: (err as Error).message }, 'browser terminal failed');
    peer.send(encodeRelayFrame(known ? { type: 'error', code: err.code, message: err.message } : { type: 'error', code: 'FERRY_INTERNAL', message: "the relay could not open the terminal: its log says why" }));
    peer.close();
  };

  // A peer that has not answered the previous ping by the next one is gone: terminate, and the close below detaches it.
  let answered = true;
  socket.on('pong', () => { answered = true; });
  let pinger = ctx.clock.setTimeout(function ping() {
    if (!answered) {
      log.info('browser terminal socket missed a ping; treating it as gone');
      socket.terminate();
      return;
    }
    answered = false;
    socket.ping();
    pinger = ctx.clock.setTimeout(ping, ctx.config.consolePingIntervalMs);
  }, ctx.config.consolePingIntervalMs);

  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return refuse(new FerryError('FERRY_USAGE', 'the terminal speaks binary frames only, not text messages: reload the console page'));
    attachment?.frame(data);
  });
  socket.on('close', () => {
    closed = true;
    pinger.cancel();
    attachment?.gone();
  });
  socket.on('error', (err) => log.info({ err: err.message }, 'browser terminal socket error'));

  if (plan.kind === 'resume') {
    try {
      attachment = plan.terminal.attach(peer, { resume: true });
    } catch (err) {
      refuse(err);
    }
    return;
  }
  // Frames that arrive before the session is open wait in the socket, not in the relay.
  socket.pause();
  ctx.consoles.open(plan.principal, plan).then((terminal) => {
    if (closed) {
      // The browser left before it learned the session's id, so nobody can resume it.
      terminal.close();
      return;
    }
    attachment = terminal.attach(peer, { resume: false });
    socket.resume();
  }, (err: unknown) => {
    if (!closed) refuse(err);
  });
}
