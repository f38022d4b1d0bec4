/**
 * The agent's built-in SSH server on its own, on a loopback TCP port, for tests that push
 * it key lists by hand (as a relay would, right or wrong) and collect what it reports. The
 * real OpenSSH clients reach it as host `device`; its host key is pinned.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { EmbeddedServer } from '../../src/agent/embedded/server.ts';
import type { ForwardRule } from '../../src/agent/embedded/forward-policy.ts';
import { silentLogger } from '../../src/common/log.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import type { AuthorizedKey } from '../../src/protocol/authorized-keys.ts';
import type { DeviceEvent, DeviceReport } from '../../src/protocol/device-report.ts';
import { eventually } from './env.ts';
import type { SshSetup } from './ssh-client.ts';

type After = { after(fn: () => unknown): void };

/** A built-in server on 127.0.0.1, what it has reported so far, and OpenSSH setups for it. */
export interface DirectEmbedded {
  server: EmbeddedServer;
  port: number;
  reports: DeviceReport[];
  /** Waits for a report of `event` that `match` accepts, and returns it. */
  waitForReport(event: DeviceEvent, match?: (r: DeviceReport) => boolean, timeoutMs?: number): Promise<DeviceReport>;
  /** An ssh_config for host `device` that logs in as `login` with the key at `keyPath`. */
  setupFor(name: string, keyPath: string, login: string): SshSetup;
}

/** Starts a built-in server (with `forwardRules`) on a loopback port; closed by `t.after`. */
export async function startDirectEmbedded(t: After, dir: string, forwardRules: readonly ForwardRule[]): Promise<DirectEmbedded> {
  const hostKey = generateKeyPair('device-host');
  const reports: DeviceReport[] = [];
  const server = new EmbeddedServer({ hostKey: hostKey.privateKey, forwardRules, log: silentLogger(), report: (r) => reports.push(r) });
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    server.handle(socket, { address: socket.remoteAddress ?? '127.0.0.1', port: socket.remotePort ?? 0 });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  // Connections still open (a client the test leaves running) would hold close() for ever.
  t.after(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); listener.close(() => resolve()); }));
  const port = (listener.address() as AddressInfo).port;
  const knownHosts = join(dir, 'known_hosts-device');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey.publicKey.line}\n`);
  return {
    server, port, reports,
    waitForReport: (event, match = () => true, timeoutMs = 10_000) =>
      eventually(() => reports.find((r) => r.event === event && match(r)), timeoutMs, `a '${event}' report`),
    setupFor(name, keyPath, login) {
      const config = join(dir, `ssh_config-direct-${name}`);
      writeFileSync(config, [
        'Host device', '  HostName 127.0.0.1', `  Port ${port}`, `  User ${login}`, `  IdentityFile ${keyPath}`, '  IdentitiesOnly yes',
        '  IdentityAgent none', `  UserKnownHostsFile ${knownHosts}`, '  GlobalKnownHostsFile /dev/null', '  StrictHostKeyChecking yes',
        '  BatchMode yes', '  ConnectTimeout 10', '  ControlMaster no', '  ControlPath none', '  LogLevel ERROR', '',
      ].join('\n'));
      return { config, knownHosts, relay: 'device' };
    },
  };
}

/** A pushed key as a relay would send it: the public line without its comment. */
export function pushedKey(user: string, pub: string, o: { logins?: string[]; forwards?: string[]; roles?: string[] } = {}): AuthorizedKey {
  return { user, line: pub.split(' ').slice(0, 2).join(' '), logins: o.logins ?? ['*'], forwards: o.forwards ?? ['*'], roles: o.roles ?? [] };
}
