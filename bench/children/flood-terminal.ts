/**
 * The flooding browser terminal of the console-flood scenario, in a process of its own as
 * a browser tab would be: its frames are decoded and acked here, not in the event loop that
 * times the other terminal's echoes. Config as JSON in FERRY_BENCH_FLOOD: { base, cookie,
 * device, login }. Requests over IPC: `start` (run `yes`), `stall` (stop acking), `ack`
 * (ack everything and go on acking), `bytes` (output bytes received so far).
 */
import { connectTerminal, TerminalClient } from '../../test/helpers/console-client.ts';

/** Requests the benchmark sends. */
export type FloodRequest =
  | { id: number; op: 'start' }
  | { id: number; op: 'stall' }
  | { id: number; op: 'ack' }
  | { id: number; op: 'bytes' };

const cfg = JSON.parse(process.env.FERRY_BENCH_FLOOD ?? '{}') as { base: string; cookie: string; device: string; login: string };
const opened = await connectTerminal(cfg.base, `device=${cfg.device}&login=${encodeURIComponent(cfg.login)}&cols=120&rows=40`, { cookie: cfg.cookie });
if (!(opened instanceof TerminalClient)) throw new Error(`the relay refused the flood terminal: ${opened.status} ${opened.body}`);
const t: TerminalClient = opened;
await t.until(() => t.sessionId, 'hello');
await t.shellReady();

function handle(req: FloodRequest): unknown {
  switch (req.op) {
    case 'start':
      t.type('yes\r');
      return null;
    case 'stall':
      t.autoAck = false;
      return t.next;
    case 'ack':
      t.autoAck = true;
      t.ack();
      return t.next;
    case 'bytes':
      return t.next;
  }
}

process.on('message', (req: FloodRequest) => {
  try {
    process.send!({ id: req.id, ok: true, value: handle(req) });
  } catch (err) {
    process.send!({ id: req.id, ok: false, error: (err as Error).message });
  }
});
process.once('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
