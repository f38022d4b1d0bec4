/**
 * The services on the benchmark's "device", in a process of their own: a sink that counts
 * what it receives and answers the count after EOF, a 64-byte echo, and a banner that speaks
 * first (as sshd does) for "connect + first byte". Prints its ports as one JSON line.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** The ports of the three services. */
export interface ServicePorts { sink: number; echo: number; banner: number }

function listen(onSocket: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
      s.on('error', () => { /* a peer reset is normal during the benchmark */ });
      onSocket(s);
    });
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve(server));
  });
}

const port = (s: Server) => (s.address() as { port: number }).port;

const sink = await listen((s) => {
  let count = 0;
  s.on('data', (d: Buffer) => { count += d.length; });
  s.on('end', () => {
    const answer = Buffer.alloc(8);
    answer.writeBigUInt64BE(BigInt(count));
    s.end(answer);
  });
});
const echo = await listen((s) => {
  s.on('data', (d: Buffer) => s.write(d));
  s.on('end', () => s.end());
});
const banner = await listen((s) => {
  s.write('B');
  s.resume();
  s.on('end', () => s.end());
});

process.stdout.write(JSON.stringify({ sink: port(sink), echo: port(echo), banner: port(banner) } satisfies ServicePorts) + '\n');
// Stopped with SIGTERM, or gone with the benchmark when its IPC channel closes.
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
