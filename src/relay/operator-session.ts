/**
 * An operator's authenticated connection: commands over exec, and channels to devices by
 * name (what `ssh -J` asks for). Nothing else: no port forwarding to addresses, no shells.
 */
import type { Connection, ServerChannel } from 'ssh2';
import { isFerryError } from '../common/errors.ts';
import { LIMITS } from '../protocol/limits.ts';
import { deviceNameFromHost } from '../protocol/names.ts';
import { pipeBoth } from '../net/pipe.ts';
import { OPEN_FAILURE, rejectWithMessage } from '../net/ssh2-internals.ts';
import { helpText, runCommand } from './commands.ts';
import { splitCommandLine } from './command-line.ts';
import type { RelayContext } from './context.ts';
import { mayReach, type Operator } from './policy.ts';
import { relayJump } from './relay-address.ts';

/** Serves an authenticated operator connection until it closes. */
export function serveOperator(ctx: RelayContext, conn: Connection, op: Operator, remote: { address: string; port: number }): void {
  const log = ctx.log.child({ user: op.name, remote: remote.address });
  // The front door hands over only connections that authenticated: this is the login.
  log.info({ key: op.keyFingerprint }, 'operator logged in');
  const entry = { end: () => conn.end(), keyFingerprint: op.keyFingerprint };
  let set = ctx.operatorConnections.get(op.name);
  if (!set) ctx.operatorConnections.set(op.name, (set = new Set()));
  set.add(entry);
  conn.on('close', () => {
    set.delete(entry);
    if (set.size === 0 && ctx.operatorConnections.get(op.name) === set) ctx.operatorConnections.delete(op.name);
  });
  conn.on('error', (err) => log.debug({ err: err.message }, 'operator connection error'));
  conn.on('request', (_accept, reject) => reject?.());
  conn.on('openssh.streamlocal', (_accept, reject) => reject());

  conn.on('tcpip', (accept, reject, info) => {
    const host = deviceNameFromHost(info.destIP);
    const device = ctx.store.getDevice(host);
    const link = ctx.registry.get(host);
    const decision = mayReach(op, host, info.destPort, device, link !== undefined, ctx.clock.now(), ctx.publicAddress);
    if (!decision.allow) {
      ctx.store.audit({ at: ctx.clock.now(), actor: op.name, action: 'device.reach.refused', target: device ? host : null, detail: { host: info.destIP, port: info.destPort, why: decision.message } });
      log.info({ host: info.destIP, port: info.destPort, why: decision.message }, 'reach refused');
      rejectWithMessage(conn, reject, decision.kind === 'prohibited' ? OPEN_FAILURE.prohibited : OPEN_FAILURE.connectFailed, decision.message);
      return;
    }
    link!.openChannel(remote, ctx.config.channelOpenTimeoutMs).then((deviceStream) => {
      const opStream = accept();
      if (!opStream) {
        deviceStream.destroy();
        return;
      }
      ctx.store.audit({ at: ctx.clock.now(), actor: op.name, action: 'device.reach', target: host, detail: { port: info.destPort, remote: remote.address } });
      // The login name on the device travels inside the end-to-end session: the relay never sees it.
      log.info({ device: host, port: info.destPort }, 'device reached');
      pipeBoth(opStream, deviceStream);
    }, (err: unknown) => {
      const message = isFerryError(err) ? err.message : `device '${host}' could not be reached`;
      log.warn({ host, err: (err as Error).message }, 'channel to device failed');
      rejectWithMessage(conn, reject, OPEN_FAILURE.connectFailed, message);
    });
  });

  conn.on('session', (accept) => {
    const session = accept();
    session.on('pty', (acceptPty) => acceptPty?.());
    session.on('env', (acceptEnv) => acceptEnv?.());
    session.on('subsystem', (_a, rejectSub) => rejectSub());
    session.on('shell', (acceptShell) => {
      const ch = acceptShell();
      const help = helpText(ctx.publicAddress, op.name).replace(/\n/g, '\r\n');
      ch.write(`You are ${op.name} (${op.role}) on the ferry relay. Reach a device with 'ssh -J ${relayJump(ctx.publicAddress, op.name)} USER@DEVICE'.\r\n\r\n${help}\r\n`);
      ch.exit(0);
      ch.end();
    });
    session.on('exec', (acceptExec, _rejectExec, info) => {
      const ch = acceptExec();
      runExec(ctx, op, remote.address, ch, info.command, log);
    });
  });
}

function runExec(ctx: RelayContext, op: Operator, remoteAddress: string, ch: ServerChannel, command: string, log: RelayContext['log']): void {
  const finish = (code: number, stdout: string, stderr: string) => {
    if (stdout) ch.write(stdout);
    if (stderr) ch.stderr.write(stderr);
    ch.exit(code);
    ch.end();
  };
  if (Buffer.byteLength(command) > LIMITS.maxCommandBytes) return finish(2, '', `ferry: the command is longer than ${LIMITS.maxCommandBytes} bytes\n`);
  const split = splitCommandLine(command);
  if ('problem' in split) return finish(2, '', `ferry: ${split.problem}\n`);
  try {
    const result = runCommand({
      store: ctx.store,
      principal: { kind: 'ssh', user: op.name, keyFingerprint: op.keyFingerprint, remoteAddress },
      now: ctx.clock.now(),
      relay: { publicAddress: ctx.publicAddress, fingerprint: ctx.fingerprint, hostKeyLine: ctx.hostKeyLine },
      onChange: (device) => ctx.reconcile(device),
      cloneOf: (device) => ctx.registry.cloneOf(device),
    }, split.words);
    finish(result.code, result.stdout, result.stderr);
  } catch (err) {
    // A bug in one command must not take the relay down; the operator sees a short note, the log the detail.
    log.error({ err, command: split.words[0] }, 'command failed unexpectedly');
    finish(1, '', 'ferry: internal error while running the command; the relay log has the details\n');
  }
}
