/**
 * The HTTP listener's one 'upgrade' listener: each WebSocket path the relay serves (the
 * browser terminal, the agent link) registers a handler for GET of that path; every other
 * upgrade request is answered 404 and closed. Without the gate such a request would be routed
 * as plain HTTP and answered onto a socket that Node no longer watches for timeouts: anyone
 * could hold such sockets open until the listener's connection limit refused everyone.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Takes one upgrade request for its path; owns `socket` from then on. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Where each path's upgrades go. */
export interface UpgradeGate {
  /** Sends GET upgrades of `path` (query aside) to `handler`. One handler per path. */
  route(path: string, handler: UpgradeHandler): void;
}

const gates = new WeakMap<Server, UpgradeGate>();

/** The gate of `server`, made (and its listener added) on first use. */
export function upgradeGate(server: Server): UpgradeGate {
  const known = gates.get(server);
  if (known) return known;
  const routes = new Map<string, UpgradeHandler>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const handler = req.method === 'GET' ? routes.get((req.url ?? '').split('?')[0]!) : undefined;
    if (handler) return handler(req, socket, head);
    refuseUpgrade(socket, 404, 'Not Found');
  });
  const gate: UpgradeGate = {
    route(path, handler) {
      if (routes.has(path)) throw new Error(`an upgrade handler for ${path} is registered already`);
      routes.set(path, handler);
    },
  };
  gates.set(server, gate);
  return gate;
}

/** Answers an upgrade request with a bodiless status (and extra header lines) and closes its socket. */
export function refuseUpgrade(socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void {
  socket.on('error', () => socket.destroy());
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`, () => socket.destroy());
}
