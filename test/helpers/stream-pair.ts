/** Two in-memory streams joined end to end, for ssh2 connections without sockets. */
import { Duplex } from 'node:stream';

/** Two in-memory streams, each the other's far end, shaped enough like sockets for ssh2. */
export function streamPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex) => new Duplex({
    read() {},
    write(chunk, _enc, cb) { peer().push(chunk); cb(); },
    final(cb) { peer().push(null); cb(); },
  });
  const a = make(() => ends[1]!);
  const b = make(() => ends[0]!);
  ends.push(a, b);
  for (const s of [a, b]) Object.assign(s, { remoteAddress: '127.0.0.1', remotePort: 1, remoteFamily: 'IPv4', setNoDelay() {} });
  return [a, b];
}
