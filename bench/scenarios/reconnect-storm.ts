/**
 * Reconnect storm: a fleet of simulated devices (10,000 in full mode, 1,000 in quick mode)
 * is online, the relay is killed and restarted, and every device comes back on the agent's
 * own backoff. Measures the time until all are online, each device's wait, and how an
 * operator command (`ssh relay whoami`, a new connection each time) fares meanwhile.
 */
import { LIMITS } from '../../src/protocol/limits.ts';
import type { Scenario } from '../context.ts';
import { startFleet } from '../fleet.ts';
import { sleep, startChild } from '../processes.ts';
import type { Row } from '../results.ts';
import { fmt, quantile } from '../stats.ts';
import { writeSshConfig } from '../ssh-config.ts';

/** How often the operator runs a command during the storm. */
const OPERATOR_EVERY_MS = 250;
const OPERATOR_TIMEOUT_MS = 15_000;
/** Every link must have been up this long before the restart, so that every agent's backoff is reset (LIMITS.backoffResetAfterMs). */
const UPTIME_BEFORE_RESTART_MS = 31_000;

/** The storm with the devices linked over `link`: TCP to the SSH port, or wss:// to the HTTPS listener. */
function reconnectStorm(link: 'tcp' | 'wss'): Scenario {
  const name = link === 'tcp' ? 'reconnect-storm' : 'reconnect-storm-wss';
  const label = link === 'tcp' ? 'reconnect storm' : 'reconnect storm over wss';
  return {
    name,
    seconds: { quick: 25, full: 120 },
    async run(ctx) {
      const size = ctx.quick ? 1_000 : 10_000;
      // Bounded: the target is 30 s; past this the row says how many were back and when.
      const allOnlineTimeoutMs = ctx.quick ? 60_000 : 90_000;
      const fleet = await startFleet(ctx, size, link);
      const fillSeconds = await fleet.fill(0, size, 240_000);
      ctx.log(`${size} devices online after ${fmt(fillSeconds)} s`);
      const filledAt = Date.now();

      const sshConfig = () => writeSshConfig(ctx.dir, 'storm-operator', ctx.operatorKey, [{ alias: 'ferry-relay', hostName: '127.0.0.1', port: fleet.relay.port, user: 'admin' }],
        [`[127.0.0.1]:${fleet.relay.port} ${fleet.relay.hostKeyLine}`]);
      /** One `ssh ferry-relay whoami`: its wall time in ms, or null when it failed or timed out. */
      const operatorCommand = async (config: string): Promise<number | null> => {
        const t0 = performance.now();
        const ssh = startChild(ctx.scope, 'ssh whoami', 'ssh', ['-F', config, 'ferry-relay', 'whoami']);
        const code = await Promise.race([ssh.exited, sleep(OPERATOR_TIMEOUT_MS).then(() => 'timeout' as const)]);
        if (code !== 0) {
          await ssh.kill9();
          const why = code === 'timeout' ? `no answer within ${OPERATOR_TIMEOUT_MS / 1000} s` : (ssh.output().trim().split('\n').pop() ?? '').slice(0, 120) || `exit ${code}`;
          failureReasons.set(why, (failureReasons.get(why) ?? 0) + 1);
        }
        return code === 0 ? performance.now() - t0 : null;
      };
      const failureReasons = new Map<string, number>();
      const calm: number[] = [];
      const before = sshConfig();
      for (let i = 0; i < 5; i++) {
        const ms = await operatorCommand(before);
        if (ms !== null) calm.push(ms);
      }
      if (!ctx.quick) await sleep(Math.max(0, filledAt + UPTIME_BEFORE_RESTART_MS - Date.now()));

      const statusBefore = await fleet.status();
      const { killedAt, readyAt } = await fleet.restartRelay();
      const config = sshConfig();
      // The operator keeps asking while the fleet comes back (and a little after).
      let storming = true;
      const during: (number | null)[] = [];
      const operator = (async () => {
        while (storming) {
          during.push(await operatorCommand(config));
          await sleep(OPERATOR_EVERY_MS);
        }
      })();
      // How many are back 10, 30 and 60 s after the relay listened, and when all are.
      const checkpoints = [10, 30, 60].filter((s) => s * 1000 < allOnlineTimeoutMs);
      const onlineAt: Record<number, number> = {};
      let allOnlineAt: number | null = null;
      try {
        while (allOnlineAt === null && Date.now() - readyAt < allOnlineTimeoutMs) {
          const s = await fleet.status();
          for (const c of checkpoints) if (onlineAt[c] === undefined && Date.now() - readyAt >= c * 1000) onlineAt[c] = s.online;
          if (s.online >= size) allOnlineAt = Date.now();
          else await sleep(100);
        }
      } finally {
        storming = false;
        await operator;
      }
      for (const c of checkpoints) onlineAt[c] ??= size;
      const statusAfter = await fleet.status();
      const { waits } = await fleet.waits(killedAt);
      await fleet.sim({ op: 'stop' });
      const waitSeconds = waits.map((w) => (w ?? allOnlineTimeoutMs) / 1000);
      const ok = during.filter((v): v is number => v !== null);
      const failed = during.length - ok.length;
      const allOnlineSeconds = allOnlineAt === null ? null : (allOnlineAt - readyAt) / 1000;
      ctx.log(`all ${size} online ${allOnlineSeconds === null ? 'NOT within the limit' : `${fmt(allOnlineSeconds)} s after the relay listened`}; operator commands: ${ok.length} ok, ${failed} failed`);

      const one = (metric: string, unit: string, value: number | null, target?: string, met?: boolean, missing?: string): Row => ({
        scenario: label, metric, unit, better: 'lower', ferry: value === null ? null : [value], openssh: null,
        ...(target ? { target } : {}), ...(met === undefined ? {} : { met }), missing: missing ?? 'no OpenSSH baseline (see notes)',
      });
      const n = size.toLocaleString('en');
      return {
        name,
        rows: [
          one(`${n} devices: relay ready → all online`, 's', allOnlineSeconds, 'all within 30 s', allOnlineSeconds === null ? false : allOnlineSeconds <= 30,
            allOnlineSeconds === null ? `not all online within ${allOnlineTimeoutMs / 1000} s` : undefined),
          ...checkpoints.map((c) => ({ ...one(`${n} devices: online ${c} s after the relay listened`, '%', (100 * onlineAt[c]!) / size), better: 'higher' as const })),
          one(`${n} devices: wait per device p50`, 's', quantile(waitSeconds, 0.5)),
          one(`${n} devices: wait per device p99`, 's', quantile(waitSeconds, 0.99)),
          one(`${n} devices: longest wait (starvation)`, 's', Math.max(...waitSeconds), 'no device starved (≤ 30 s)', Math.max(...waitSeconds) <= 30),
          one('operator `ssh relay whoami` before the storm p50', 'ms', quantile(calm, 0.5)),
          one('operator `ssh relay whoami` during the storm p50', 'ms', ok.length ? quantile(ok, 0.5) : null),
          one('operator `ssh relay whoami` during the storm max', 'ms', ok.length ? Math.max(...ok) : null, 'responsive throughout (no command failed)', failed === 0,
            failed > 0 ? `${failed} of ${during.length} commands failed (${[...failureReasons].map(([why, n]) => `${n}× ${why}`).join("; ")})` : undefined),
        ],
        notes: [
          `${n} simulated devices (as in idle-devices: ssh2 clients in a separate process, one source address each, the agent's retry loop with default backoff) were online; ${ctx.quick ? 'then' : 'after every link had been up 31 s (so every backoff was reset)'} the relay was killed with SIGKILL and started again at once on the same port with the same data dir: it was down ${fmt((readyAt - killedAt) / 1000)} s, mostly node + tsx startup. Wait per device = from its link going down to its new link being registered; a device not back within ${allOnlineTimeoutMs / 1000} s counts as ${allOnlineTimeoutMs / 1000} s.`,
          `Connection attempts during the storm: ${statusAfter.attempts - statusBefore.attempts} for ${n} devices; ${statusAfter.failures - statusBefore.failures} failed: ${Object.entries(statusAfter.failuresByKind).map(([k, v]) => `${v - (statusBefore.failuresByKind[k] ?? 0)} ${k}`).filter((t) => !t.startsWith('0 ')).join(', ')} (the relay runs at most ${LIMITS.maxHandshakes} device handshakes at once and queues the rest up to ${LIMITS.maxUnauthenticated.toLocaleString('en')} unauthenticated connections, then sheds; the agent's connect timeout is ${LIMITS.connectTimeoutMs / 1000} s).`,
          `Operator: ${during.length} \`ssh -F … ferry-relay whoami\` runs, one every ${OPERATOR_EVERY_MS} ms after the previous ended, from the relay's restart until all devices were online; each is a new SSH connection, handshake and exec from 127.0.0.1.`,
          'No OpenSSH baseline: 10,000 `ssh -R` sessions would be 20,000 sshd processes (about 16 GiB at the 1.6 MiB each measured in idle-devices).',
          'The simulated devices share the 2 cores with the relay: their handshakes cost about as much CPU as the relay\'s side.',
          ...(link === 'wss' ? ['Over wss every device dials wss://127.0.0.1:PORT/v1/agent on the relay\'s HTTPS listener (its self-signed certificate, pinned): a TCP, a TLS 1.3 and a WebSocket handshake before the SSH one, each attempt.'] : []),
        ],
      };
    },
  };
}

export const reconnectStormScenario = reconnectStorm('tcp');
export const reconnectStormWssScenario = reconnectStorm('wss');
