/** The two places a channel from the relay can go: a TCP SSH target, or the built-in server. */
import { pipeBoth } from '../net/pipe.ts';
import { connectTcp } from '../net/tcp.ts';
import type { TcpTarget } from './config.ts';
import type { EmbeddedServer } from './embedded/server.ts';
import type { ChannelTarget } from './link.ts';

/** Channels go to host:port (the device's own sshd): connect first, so a refusal reaches the operator. */
export function tcpTarget(target: TcpTarget, connectTimeoutMs: number): ChannelTarget {
  return {
    open: async () => {
      const socket = await connectTcp(target.host, target.port, connectTimeoutMs);
      return (channel) => pipeBoth(channel, socket);
    },
  };
}

/** Channels go to the agent's built-in SSH server. */
export function embeddedTarget(server: EmbeddedServer): ChannelTarget {
  return { open: async (origin) => (channel) => server.handle(channel, origin) };
}

/** How a target is written in logs and messages. */
export function describeTarget(target: 'embedded' | TcpTarget): string {
  return target === 'embedded' ? 'the built-in SSH server' : `${target.host}:${target.port}`;
}
