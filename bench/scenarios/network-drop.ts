/**
 * Network drop: the device's network goes silent (every packet dropped, no FIN, no RST) for a
 * while and comes back; how long after it comes back is each device reachable again? The
 * devices run in a network namespace (bench/device-netns.ts): real `ferry agent` processes
 * and `autossh` + `ssh -N -R`, side by side, so one outage hits both systems at once.
 */
import { join } from 'node:path';
import { hasAutossh, startOpensshRelay, startReverseTunnel } from '../baseline-openssh.ts';
import type { Scenario } from '../context.ts';
import { createDeviceNetns, HOST_ADDRESS, netnsMissing } from '../device-netns.ts';
import { startFerryRelay } from '../ferry-setup.ts';
import { freePort } from '../net-probes.ts';
import { connectOperator, timeUntilReachable } from '../operator-probe.ts';
import { sleep, startChild } from '../processes.ts';
import type { Row } from '../results.ts';
import { quantile } from '../stats.ts';
import { writeSshConfig } from '../ssh-config.ts';

/** The device's service, inside the namespace: answers every connection at once. */
const BANNER_PORT = 7001;
const BANNER = `require('node:net').createServer((s) => s.end('hello\\n')).listen(${BANNER_PORT}, '127.0.0.1', () => console.log('listening'));`;
/** A device not back within this long after the network returns counts as this long. */
const REACH_TIMEOUT_MS = 120_000;
const AGENT_UP_MS = 30_000;

export const networkDropScenario: Scenario = {
  name: 'network-drop',
  seconds: { quick: 25, full: 150 },
  async run(ctx) {
    const outagesS = ctx.quick ? [5] : [10, 25, 40];
    const rowsFor = (ferry: number[][] | null, openssh: number[][] | null, missing?: string): Row[] => outagesS.flatMap((d, i) => [0.5, 0.95].map((q): Row => ({
      scenario: 'network drop', metric: `${d} s outage → reachable p${q * 100}`, unit: 's', better: 'lower',
      ferry: ferry ? [quantile(ferry[i]!, q)] : null, openssh: openssh ? [quantile(openssh[i]!, q)] : null,
      ...(q === 0.95 ? { target: 'p95 ≤ 2 s', met: ferry !== null && quantile(ferry[i]!, q) <= 2 } : {}),
      ...(missing ? { missing } : {}),
    })));
    const missing = netnsMissing() ?? (hasAutossh() ? null : 'needs autossh for the baseline (apt-get install autossh)');
    if (missing) return { name: 'network-drop', rows: rowsFor(null, null, `not run: ${missing}`), notes: [] };

    const devices = ctx.quick ? 2 : 4;
    const ns = createDeviceNetns(ctx.scope, String(process.pid));
    const banner = startChild(ctx.scope, 'device banner', ns.exec[0]!, [...ns.exec.slice(1), process.execPath, '-e', BANNER]);
    await banner.waitFor(/listening/, 10_000);

    // ferry: the relay on the host's end of the link, agents in the namespace.
    const relay = await startFerryRelay(ctx.scope, { dataDir: join(ctx.dir, 'relay'), host: HOST_ADDRESS, adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir });
    const names = Array.from({ length: devices }, (_, i) => `drop-${i}`);
    await Promise.all(names.map(async (name) => {
      const token = await relay.call({ op: 'token', input: { name, approve: true } }) as string;
      const agent = startChild(ctx.scope, `agent-${name}`, ns.exec[0]!, [...ns.exec.slice(1), process.execPath, 'bin/ferry.js', 'agent',
        '--state-dir', join(ctx.dir, `agent-${name}`), '--token', token, '--relay', `${HOST_ADDRESS}:${relay.port}`,
        '--ssh-target', `127.0.0.1:${BANNER_PORT}`, '--log-level', 'info']);
      await agent.waitFor(/"msg":"link up"/, AGENT_UP_MS);
    }));

    // OpenSSH: sshd on the host's end, autossh + ssh -N -R in the namespace.
    const sshd = await startOpensshRelay(ctx.scope, join(ctx.dir, 'sshd'), [ctx.operatorKey.pub, ctx.deviceKey.pub], HOST_ADDRESS);
    const config = writeSshConfig(ctx.dir, 'drop-device', ctx.deviceKey, [{ alias: 'openssh-relay', hostName: HOST_ADDRESS, port: sshd.port, user: 'root' }],
      [`[${HOST_ADDRESS}]:${sshd.port} ${sshd.hostKeyLine}`]);
    const ports: number[] = [];
    while (ports.length < devices) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    ports.forEach((p, i) => startReverseTunnel(ctx.scope, `autossh -R ${i}`, config, 'openssh-relay', p, BANNER_PORT, true, [], ns.exec));

    const ferryOp = await connectOperator(relay.port, 'admin', ctx.operatorKey, 10_000, HOST_ADDRESS);
    const opensshOp = await connectOperator(sshd.port, 'root', ctx.operatorKey, 10_000, HOST_ADDRESS);
    const ferryTargets = names.map((host) => ({ host, port: 22 }));
    const opensshTargets = ports.map((port) => ({ host: '127.0.0.1', port }));
    const allReachable = async (what: string) => {
      const [f, o] = await Promise.all([timeUntilReachable(ferryOp, ferryTargets, Date.now(), 30_000), timeUntilReachable(opensshOp, opensshTargets, Date.now(), 30_000)]);
      if ([...f, ...o].includes(null)) throw new Error(`not every device was reachable ${what}`);
    };
    try {
      await allReachable('before the first outage');
      const ferryS: number[][] = [];
      const opensshS: number[][] = [];
      for (const d of outagesS) {
        await ns.drop();
        await sleep(d * 1000);
        await ns.restore();
        const t0 = Date.now();
        const [f, o] = await Promise.all([timeUntilReachable(ferryOp, ferryTargets, t0, REACH_TIMEOUT_MS), timeUntilReachable(opensshOp, opensshTargets, t0, REACH_TIMEOUT_MS)]);
        const show = (ms: (number | null)[]) => ms.map((v) => (v === null ? 'never' : `${v}`)).join(', ');
        ctx.log(`${d} s outage: reachable after: ferry ${show(f)} ms; OpenSSH ${show(o)} ms`);
        ferryS.push(f.map((v) => (v ?? REACH_TIMEOUT_MS) / 1000));
        opensshS.push(o.map((v) => (v ?? REACH_TIMEOUT_MS) / 1000));
        if ([...f, ...o].includes(null)) await allReachable(`again after the ${d} s outage`);
      }
      return {
        name: 'network-drop',
        rows: rowsFor(ferryS, opensshS),
        notes: [
          `${devices} ferry agents and ${devices} autossh + \`ssh -N -R\` tunnels in one network namespace whose only link is a veth pair to the host (198.18.0.0/30); the ferry relay and sshd listen on the host's end. An outage drops every packet in and out of the namespace (nftables; no FIN or RST reaches either side) for ${outagesS.join(' s, then ')} s. The clock starts when the drop rule is removed and stops, per device, when an operator logged in to the relay gets the device service's first byte through a channel (tried every 50 ms without waiting for earlier tries). Not back within ${REACH_TIMEOUT_MS / 1000} s counts as ${REACH_TIMEOUT_MS / 1000} s.`,
          "Both systems with their defaults: keepalive 20 s × 3 on both ends (ferry relay and agent; sshd ClientAlive, ssh ServerAlive). OpenSSH keeps the old connection through an outage shorter than a minute; sshd 9.2 sent nothing during the outages here (only the device's ssh pinged), so its first packet afterwards went out at once and the connection carried on. ferry does the same for short outages; an agent that has heard nothing from the relay for its keepalive interval + 5 s (25 s) drops the silent link and dials a new one, a fresh TCP connect every second, so after longer outages it does not wait for TCP's backed-off resends (which on the old link would come up to a minute later).",
        ],
      };
    } finally {
      ferryOp.end();
      opensshOp.end();
    }
  },
};
