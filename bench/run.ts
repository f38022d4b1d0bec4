/**
 * `npm run bench [-- --quick] [--only NAME]... [--profile] [--no-write]`: runs each scenario
 * for ferry and for the OpenSSH baseline, alternating rounds, prints medians, spreads and
 * ratios, and adds a dated section to bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServicePorts } from './children/device-services.ts';
import type { BenchContext, Scenario } from './context.ts';
import { backgroundMeter } from './cpu-usage.ts';
import { machineInfo } from './machine.ts';
import { killAllChildrenNow, nodeArgs, ROOT, Scope, startChild } from './processes.ts';
import { markdownTable, recordRun, textTable, type Row, type ScenarioResult } from './results.ts';
import { CIPHER, makeKey } from './ssh-config.ts';
import { consoleFloodScenario } from './scenarios/console-flood.ts';
import { idleDevicesScenario } from './scenarios/idle-devices.ts';
import { jumpCopyScenario } from './scenarios/jump-copy.ts';
import { networkDropScenario } from './scenarios/network-drop.ts';
import { newConnectionScenario } from './scenarios/new-connection.ts';
import { reconnectStormScenario, reconnectStormWssScenario } from './scenarios/reconnect-storm.ts';
import { recoveryScenario } from './scenarios/recovery.ts';
import { roundTripScenario } from './scenarios/round-trip.ts';
import { throughputScenario } from './scenarios/throughput.ts';
import { wssLinkScenario } from './scenarios/wss-link.ts';

const SCENARIOS: Scenario[] = [
  throughputScenario, roundTripScenario, newConnectionScenario, jumpCopyScenario,
  idleDevicesScenario, recoveryScenario, networkDropScenario, reconnectStormScenario, reconnectStormWssScenario, wssLinkScenario,
  consoleFloodScenario,
];
/** The whole run is abandoned (children killed, temp dirs removed) past this. */
const WATCHDOG_MS = { quick: 5 * 60_000, full: 25 * 60_000 };

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench -- [--quick] [--only NAME]... [--profile] [--no-write]
  --quick      every scenario, smaller and fewer rounds (under 2 minutes)
  --only NAME  run only this scenario (repeatable): ${SCENARIOS.map((s) => s.name).join(', ')}
  --profile    relay and agent processes write CPU profiles under bench/profiles/SCENARIO/
  --no-write   print only; do not add a section to bench/RESULTS.md
`);
  process.exit(0);
}
const only = (opts.only ?? []).flatMap((s) => s.split(','));
const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length) {
  process.stderr.write(`bench: no scenario named ${unknown.join(', ')}; there are ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const chosen = only.length ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS;
const quick = opts.quick;
const mode = quick ? 'quick' : 'full';

const scopes = new Set<Scope>();
let closing = false;
async function abandon(why: string, code: number): Promise<never> {
  if (!closing) {
    closing = true;
    process.stderr.write(`\nbench: ${why}; stopping every child process and removing temp dirs\n`);
    for (const s of [...scopes].reverse()) await s.close();
  }
  process.exit(code);
}
process.on('exit', killAllChildrenNow);
process.once('SIGINT', () => void abandon('interrupted', 130));
process.once('SIGTERM', () => void abandon('terminated', 143));
const watchdog = setTimeout(() => void abandon(`still running after ${WATCHDOG_MS[mode] / 60_000} minutes`, 1), WATCHDOG_MS[mode]);
watchdog.unref();

const startedAt = new Date();
const log = (msg: string) => process.stdout.write(`${msg}\n`);
log(`ferry benchmarks, ${mode} mode: ${chosen.map((s) => s.name).join(', ')} (about ${Math.round(chosen.reduce((a, s) => a + s.seconds[mode], 0) / 60 * 10) / 10} min)`);

const runScope = new Scope();
scopes.add(runScope);
const results: ScenarioResult[] = [];
try {
  const dir = runScope.tempDir();
  const operatorKey = makeKey(dir, 'operator_key');
  const deviceKey = makeKey(dir, 'device_key');
  const servicesChild = startChild(runScope, 'device-services', process.execPath, nodeArgs('bench/children/device-services.ts'), { ipc: true });
  const services = JSON.parse((await servicesChild.waitFor(/^\{.*\}$/m, 20_000))[0]) as ServicePorts;

  for (const scenario of chosen) {
    const scope = new Scope();
    scopes.add(scope);
    const t0 = Date.now();
    log(`\n== ${scenario.name}`);
    const ctx: BenchContext = {
      scope, dir: scope.tempDir(`ferry-bench-${scenario.name}-`), quick, services, operatorKey, deviceKey,
      profileDir: opts.profile ? join(ROOT, 'bench/profiles', scenario.name) : null,
      log: (m) => log(`  ${m}`),
    };
    const background = backgroundMeter();
    try {
      const r = await scenario.run(ctx);
      const cores = background();
      if (!Number.isNaN(cores)) r.notes.push(`Other processes on this machine kept ${cores.toFixed(2)} of its cores busy on average while this scenario ran.`);
      results.push(r);
      log(textTable(r.rows));
      for (const n of r.notes) log(`  - ${n}`);
    } catch (err) {
      log(`  FAILED: ${(err as Error).stack ?? String(err)}`);
      results.push({ name: scenario.name, rows: [{ scenario: scenario.name, metric: 'failed', unit: '-', better: 'higher', ferry: null, openssh: null, missing: `failed: ${(err as Error).message.split('\n')[0]}` }], notes: [] });
    } finally {
      await scope.close();
      scopes.delete(scope);
    }
    log(`  (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
} finally {
  await runScope.close();
  scopes.delete(runScope);
}

const rows: Row[] = results.flatMap((r) => r.rows);
const minutes = (Date.now() - startedAt.getTime()) / 60_000;
log(`\n== all results (${mode} mode, ${minutes.toFixed(1)} min)\n${textTable(rows)}`);

if (!opts['no-write']) {
  const date = execFileSync('date', { encoding: 'utf8' }).trim();
  const section = [
    `## ${startedAt.toISOString().slice(0, 10)}: ${mode} run${only.length ? ` (--only ${only.join(', ')})` : ''}${opts.profile ? ' with --profile' : ''}`,
    '',
    `Run at ${date}, took ${minutes.toFixed(1)} minutes.`,
    '',
    ...machineInfo().map(([k, v]) => `- ${k}: ${v}`),
    `- ciphers: every hop aes128-gcm@openssh.com. OpenSSH clients get \`Ciphers ${CIPHER}\`; ferry's agent link negotiates it as the first cipher of the ssh2 client's list; kex curve25519-sha256, host keys Ed25519.`,
    '- processes: the ferry relay (bench/children/relay-host.ts: startRelay as `ferry relay` runs it, plus an IPC channel), each `ferry agent`, each sshd and ssh, the device services and the simulated devices are separate processes; the load generator and probes run in the benchmark process.',
    '',
    markdownTable(rows),
    '',
    ...results.flatMap((r) => r.notes.map((n) => `- ${r.name}: ${n}`)),
  ].join('\n');
  recordRun(join(ROOT, 'bench/RESULTS.md'), section);
  log('\nadded a section to bench/RESULTS.md');
}
process.exit(results.some((r) => r.rows.some((row) => row.metric === 'failed')) ? 1 : 0);
