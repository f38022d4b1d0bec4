/**
 * `wss://RELAY/v1/agent`: the agent's SSH link inside a WebSocket, for devices whose network
 * lets out only HTTPS (perhaps through a proxy). The upgrade is checked before a WebSocket is
 * made: a relay over the front door's limits answers 503 with Retry-After, so a flood of
 * upgrades costs no more than a flood of TCP connections. An accepted socket becomes a byte
 * stream (net/ws-stream.ts: binary messages, pings, never half-open) and goes through the SSH
 * front door like a TCP connection: the same authentication, registry, lanes and limits.
 * A plain GET of the path is told what it is (426).
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { LIMITS } from '../../protocol/limits.ts';
import { AGENT_LINK_PATH } from '../../protocol/relay-endpoint.ts';
import { webSocketStream } from '../../net/ws-stream.ts';
import type { IncomingStream } from '../front-door.ts';
import { refuseUpgrade, upgradeGate } from './upgrade-gate.ts';

/** What the route needs of the SSH front door. */
export interface AgentLinkDoor {
  wouldShed(address: string): boolean;
  acceptStream(incoming: IncomingStream): void;
}

/** Registers the agent link on `app`; `clientAddress` says who a request is from (the TCP peer, or X-Forwarded-For from a trusted proxy). */
export function registerAgentLinkRoute(app: FastifyInstance, door: AgentLinkDoor, clientAddress: (req: IncomingMessage) => string): void {
  // No compression: inflating a flood would cost the relay CPU, and SSH's bytes do not compress.
  // No client tracking: the front door tracks every stream it holds.
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: LIMITS.linkWsMaxMessageBytes, clientTracking: false });
  upgradeGate(app.server).route(AGENT_LINK_PATH, (req, socket, head) => {
    const address = clientAddress(req);
    if (door.wouldShed(address)) {
      return refuseUpgrade(socket, 503, 'Service Unavailable', { 'Retry-After': String(LIMITS.linkWsRetryAfterSeconds) });
    }
    // ws answers a malformed upgrade (no key, wrong version) with a 400 of its own.
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = webSocketStream(ws, { pingIntervalMs: LIMITS.linkWsPingIntervalMs, maxMessageBytes: LIMITS.linkWsMaxMessageBytes, highWaterMark: LIMITS.socketBufferBytes, serverSocket: socket });
      door.acceptStream({ stream, remoteAddress: address, remotePort: req.socket.remotePort ?? 0, transport: 'wss' });
    });
  });
  app.get(AGENT_LINK_PATH, async (_req, reply) => reply.code(426).header('upgrade', 'websocket').send({
    error: { code: 'FERRY_USAGE', message: `${AGENT_LINK_PATH} is the agent's link, a WebSocket: point 'ferry agent --relay wss://HOST/' here` },
  }));
}
