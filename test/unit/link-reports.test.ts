// The agent's reports travel to the relay on the key-watch exec channel of the live link
// (src/agent/link.ts), against an in-memory ssh2 server standing in for the relay: what
// queued while there was no link goes out first, with the count of what was dropped; a
// closed channel leaves new reports queued for the next link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import type { Algorithms, ServerChannel } from 'ssh2';
import { openLink } from '../../src/agent/link.ts';
import { ReportQueue } from '../../src/agent/report-queue.ts';
import { silentLogger } from '../../src/common/log.ts';
import { generateKeyPair } from '../../src/common/ssh-keys.ts';
import { AUTHORIZED_KEYS_COMMAND, encodeAuthorizedKeys, type AuthorizedKey } from '../../src/protocol/authorized-keys.ts';
import { parseDeviceReport, type DeviceReport } from '../../src/protocol/device-report.ts';
import { SSH_ALGORITHMS } from '../../src/protocol/ssh-algorithms.ts';
import { eventually } from '../helpers/env.ts';
import { streamPair } from '../helpers/stream-pair.ts';

const report = (n: number): DeviceReport => ({ event: 'session.end', at: n, operator: 'alice', login: 'pi', detail: { session: `s${n}`, exit: 0 } });

/** A stand-in relay: accepts the login, the tunnel and the key watch, sends an empty key list, and keeps the lines the agent writes. */
async function fakeRelay() {
  const [clientSide, serverSide] = streamPair();
  const lines: string[] = [];
  let watch: ServerChannel | null = null;
  const server = new ssh2.Server({ hostKeys: [generateKeyPair('relay').privateKey], algorithms: SSH_ALGORITHMS as Algorithms }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('request', (accept) => accept?.());
    conn.on('session', (accept) => accept().on('exec', (acceptExec, reject, info) => {
      if (info.command !== AUTHORIZED_KEYS_COMMAND) return reject();
      const ch = acceptExec();
      watch = ch;
      let buffered = '';
      ch.on('data', (d: Buffer) => {
        buffered += d.toString('utf8');
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) { lines.push(buffered.slice(0, nl)); buffered = buffered.slice(nl + 1); }
      });
      ch.write(encodeAuthorizedKeys({ keys: [] }));
    }));
  });
  server.injectSocket(serverSide as never);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ sock: clientSide, username: 'ferry-agent', privateKey: generateKeyPair('agent').privateKey, hostVerifier: () => true });
  });
  return { client, lines, watch: () => watch, end: () => { client.end(); clientSide.destroy(); serverSide.destroy(); } };
}

test('reports queued before the link go out on the key-watch channel once it opens, the first with the count dropped; later ones at once', async (t) => {
  const queue = new ReportQueue(5);
  for (let i = 0; i < 7; i++) queue.push(report(i));
  const relay = await fakeRelay();
  t.after(() => relay.end());
  let keys: AuthorizedKey[] | null = null;
  await openLink(relay.client, 'dev', { open: () => Promise.reject(new Error('no channels in this test')) }, silentLogger(), (k) => { keys = k; }, queue);
  assert.deepEqual(keys, [], 'the key list still arrives on the same channel');
  await eventually(() => relay.lines.length === 5, 5_000, 'the queued reports to reach the relay');
  const got = relay.lines.map((l) => parseDeviceReport(l)!);
  assert.deepEqual(got.map((r) => r.at), [2, 3, 4, 5, 6], 'the newest five, in order');
  assert.equal(got[0]!.detail.droppedBefore, 2);
  queue.push(report(7));
  await eventually(() => relay.lines.length === 6, 5_000, 'a new report to follow');
  assert.equal(parseDeviceReport(relay.lines[5]!)!.at, 7);

  // The relay closes the watch (as when the link goes): reports wait for the next one.
  const closed = new Promise<void>((r) => relay.watch()!.once('close', () => r()));
  relay.watch()!.close();
  await closed;
  queue.push(report(8));
  await eventually(() => queue.stats.queued === 1, 5_000, 'the report to stay queued');
  assert.equal(relay.lines.length, 6, 'nothing more reached the closed watch');
});
