/**
 * Jump copy: `scp` of one file to the device's own sshd, jumping through the relay
 * (ProxyJump, as `scp -J` does), against the same copy through OpenSSH as the jump host
 * with an `ssh -N -R` tunnel to that sshd. The inner SSH session is end to end in both.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startThrowawaySshd } from '../../test/helpers/throwaway-sshd.ts';
import { startOpensshRelay, startReverseTunnel } from '../baseline-openssh.ts';
import type { Scenario } from '../context.ts';
import { startFerryAgent, startFerryRelay } from '../ferry-setup.ts';
import { bannerAnswers, freePort, until } from '../net-probes.ts';
import { startChild } from '../processes.ts';
import { fmt, median } from '../stats.ts';
import { writeSshConfig } from '../ssh-config.ts';

const MiB = 1024 * 1024;
const COPY_TIMEOUT_MS = 180_000;

/** A file of `size` bytes that does not compress (1 MiB of random bytes, repeated). */
function makeFile(path: string, size: number): void {
  const block = randomBytes(MiB);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; left -= MiB) writeSync(fd, block, 0, Math.min(MiB, left));
  } finally {
    closeSync(fd);
  }
}

export const jumpCopyScenario: Scenario = {
  name: 'jump-copy',
  seconds: { quick: 10, full: 45 },
  async run(ctx) {
    const rounds = 2;
    const size = (ctx.quick ? 64 : 1024) * MiB;
    const file = join(ctx.dir, 'payload');
    makeFile(file, size);

    const sshd = await startThrowawaySshd(join(ctx.dir, 'device-sshd'), [ctx.operatorKey.pub]);
    ctx.scope.defer(() => sshd.stop());
    const deviceKnown = `device-sshd ${sshd.hostKeyLine}`;

    const relay = await startFerryRelay(ctx.scope, { dataDir: join(ctx.dir, 'ferry-relay'), adminKey: ctx.operatorKey.pub, profileDir: ctx.profileDir });
    await startFerryAgent(ctx.scope, ctx.dir, relay, 'bench-jump', sshd.port, ctx.profileDir);
    const ferryConfig = writeSshConfig(ctx.dir, 'jump-ferry', ctx.operatorKey, [
      { alias: 'ferry-relay', hostName: '127.0.0.1', port: relay.port, user: 'admin' },
      { alias: 'device', hostName: 'bench-jump', port: 22, user: sshd.user, proxyJump: 'ferry-relay', hostKeyAlias: 'device-sshd' },
    ], [`[127.0.0.1]:${relay.port} ${relay.hostKeyLine}`, deviceKnown]);

    const orelay = await startOpensshRelay(ctx.scope, join(ctx.dir, 'openssh-relay'), [ctx.operatorKey.pub, ctx.deviceKey.pub]);
    const remotePort = await freePort();
    const orelayHost = { alias: 'openssh-relay', hostName: '127.0.0.1', port: orelay.port, user: 'root' };
    const orelayKnown = `[127.0.0.1]:${orelay.port} ${orelay.hostKeyLine}`;
    const reverse = startReverseTunnel(ctx.scope, 'ssh -R jump', writeSshConfig(ctx.dir, 'jump-device', ctx.deviceKey, [orelayHost], [orelayKnown]), 'openssh-relay', remotePort, sshd.port);
    await until(async () => {
      if (!reverse.running) throw new Error(`ssh -R exited: ${reverse.output()}`);
      return bannerAnswers(remotePort);
    }, 20_000, 'the reverse tunnel to the device sshd');
    const opensshConfig = writeSshConfig(ctx.dir, 'jump-openssh', ctx.operatorKey, [
      orelayHost, { alias: 'device', hostName: '127.0.0.1', port: remotePort, user: sshd.user, proxyJump: 'openssh-relay', hostKeyAlias: 'device-sshd' },
    ], [orelayKnown, deviceKnown]);

    const copy = async (config: string): Promise<number> => {
      const t0 = performance.now();
      const scp = startChild(ctx.scope, 'scp', 'scp', ['-F', config, '-q', file, 'device:/dev/null']);
      const code = await Promise.race([scp.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), COPY_TIMEOUT_MS).unref())]);
      if (code !== 0) {
        await scp.kill9();
        throw new Error(`scp ${code === 'timeout' ? `took longer than ${COPY_TIMEOUT_MS} ms` : `exited ${code}`}: ${scp.output().slice(-2000)}`);
      }
      return size / MiB / ((performance.now() - t0) / 1000);
    };
    const systems = [{ system: 'ferry', config: ferryConfig }, { system: 'openssh', config: opensshConfig }] as const;
    const values: Record<string, number[]> = { ferry: [], openssh: [] };
    for (let round = 0; round < rounds; round++) {
      for (const s of round % 2 === 0 ? systems : [...systems].reverse()) {
        const rate = await copy(s.config);
        values[s.system]!.push(rate);
        ctx.log(`round ${round + 1}/${rounds}: ${s.system}: ${fmt(rate)} MiB/s`);
      }
    }
    return {
      name: 'jump-copy',
      rows: [{
        scenario: 'jump copy', metric: `scp ${size / MiB} MiB to the device's sshd`, unit: 'MiB/s', better: 'higher',
        ferry: values.ferry!, openssh: values.openssh!, target: '≥ OpenSSH as jump host', met: median(values.ferry!) >= median(values.openssh!),
      }],
      notes: [
        `\`scp\` (SFTP mode) of ${size / MiB} MiB of incompressible data to /dev/null on a throwaway sshd (the device's SSH target), ${rounds} rounds; the time includes both SSH handshakes.`,
        'ferry: ProxyJump through the ferry relay (`ssh -W bench-jump:22`) and the `ferry agent` link. OpenSSH: ProxyJump through sshd to its own `ssh -N -R` port. Three SSH layers in both: operator→relay, relay→device link, and the end-to-end session, every one aes128-gcm@openssh.com.',
      ],
    };
  },
};
