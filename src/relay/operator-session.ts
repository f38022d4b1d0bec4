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
import { userSubject } from './operations/index.ts';
import { reachDecision } from './policy.ts';
import type { Principal } from './principal.ts';
import { relayJump } from './relay-address.ts';

/** An operator who logged in over SSH with one of their keys. */
export type SshPrincipal = Extract<Principal, { kind: 'ssh' }>;

/** Serves an authenticated operator connection until it closes. */
export function serveOperator(ctx: RelayContext, conn: Connection, p: SshPrincipal, remote: { address: string; port: number }): void {
  const log = ctx.log.child({ user: p.user, remote: remote.address });
  // The front door hands over only connections that authenticated: this is the login.
  log.info({ key: p.keyFingerprint }, 'operator logged in');
  ctx.store.audit({ at: ctx.clock.now(), actor: p.user, action: 'relay.login', target: null, detail: { key: p.keyFingerprint, remote: remote.address } });
  const live = ctx.sessions.connect(p, (why) => {
    log.info({ why }, 'connection ended by the relay');
    conn.end();
  });
  conn.on('close', () => ctx.sessions.disconnect(live));
  conn.on('error', (err) => log.debug({ err: err.message }, 'operator connection error'));
  conn.on('request', (_accept, reject) => reject?.());
  conn.on('openssh.streamlocal', (_accept, reject) => reject());

  conn.on('tcpip', (accept, reject, info) => {
    const host = deviceNameFromHost(info.destIP);
    const refuse = (kind: 'prohibited' | 'unavailable', message: string, known: boolean, why = message) => {
      ctx.store.audit({ at: ctx.clock.now(), actor: p.user, action: 'reach.refused', target: known ? host : null, detail: { host: info.destIP, port: info.destPort, kind: 'jump', remote: remote.address, why } });
      log.info({ host: info.destIP, port: info.destPort, why: message }, 'reach refused');
      rejectWithMessage(conn, reject, kind === 'prohibited' ? OPEN_FAILURE.prohibited : OPEN_FAILURE.connectFailed, message);
    };
    const device = ctx.store.getDevice(host);
    const link = ctx.registry.get(host);
    // p's roles are read from the store now, so that a change applies to the next channel at once.
    const decision = reachDecision(userSubject(ctx.store, p.user), host, info.destPort, device, link !== undefined, ctx.clock.now(), ctx.publicAddress);
    if (!decision.allow) return refuse(decision.kind, decision.message, device !== null, decision.why);
    const ticket = ctx.sessions.admit(live, host, link!);
    if ('refused' in ticket) return refuse('unavailable', ticket.refused, true);
    link!.openChannel(remote, ctx.config.channelOpenTimeoutMs).then((deviceStream) => {
      const opStream = accept();
      if (!opStream) {
        ticket.cancel();
        deviceStream.destroy();
        return;
      }
      // The login name on the device travels inside the end-to-end session: the relay never
      // sees it; the device reports it (ssh.login rows).
      const reach = ticket.start(opStream, deviceStream, pipeBoth);
      if (reach) log.info({ device: host, port: info.destPort, session: reach.id }, 'device reached');
    }, (err: unknown) => {
      ticket.cancel();
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
      const help = helpText(ctx.publicAddress, p.user).replace(/\n/g, '\r\n');
      const roles = ctx.store.getUser(p.user)?.roles.join(', ') || 'none';
      ch.write(`You are ${p.user} (roles ${roles}) on the ferry relay. Reach a device with 'ssh -J ${relayJump(ctx.publicAddress, p.user)} USER@DEVICE'.\r\n\r\n${help}\r\n`);
      ch.exit(0);
      ch.end();
    });
    session.on('exec', (acceptExec, _rejectExec, info) => {
      const ch = acceptExec();
      runExec(ctx, p, ch, info.command, log);
    });
  });
}

function runExec(ctx: RelayContext, p: SshPrincipal, ch: ServerChannel, command: string, log: RelayContext['log']): void {
  const finish = (code: number, stdout: string, stderr: string) => {
    if (stdout) ch.write(stdout);
    if (stderr) ch.stderr.write(stderr);
    ch.exit(code);
    ch.end();
  };
  // Output that may be larger than memory (`audit export`) goes out as the channel takes
  // it: one admin's export must not fill the relay's memory, nor block its event loop.
  const pump = (code: number, stderr: string, more: Iterator<string>) => {
    let closed = false;
    ch.once('close', () => { closed = true; });
    const next = () => {
      try {
        for (let n = more.next(); !closed; n = more.next()) {
          if (n.done) return finish(code, '', stderr);
          if (!ch.write(n.value)) return void ch.once('drain', next);
        }
      } catch (err) {
        log.error({ err }, 'command output failed unexpectedly');
        finish(1, '', 'ferry: internal error while writing the output; the relay log has the details\n');
      }
    };
    next();
  };
  if (Buffer.byteLength(command) > LIMITS.maxCommandBytes) return finish(2, '', `ferry: the command is longer than ${LIMITS.maxCommandBytes} bytes\n`);
  const split = splitCommandLine(command);
  if ('problem' in split) return finish(2, '', `ferry: ${split.problem}\n`);
  try {
    const result = runCommand({
      store: ctx.store,
      principal: p,
      now: ctx.clock.now(),
      relay: { publicAddress: ctx.publicAddress, fingerprint: ctx.fingerprint, hostKeyLine: ctx.hostKeyLine, consoleUrl: ctx.consoleUrl, agentEndpoints: ctx.agentEndpoints, tlsPin: ctx.tlsPin },
      dataDir: ctx.config.dataDir,
      onChange: (device) => ctx.reconcile(device),
      cloneOf: (device) => ctx.registry.cloneOf(device),
    }, split.words);
    if (!result.more) return finish(result.code, result.stdout, result.stderr);
    if (result.stdout) ch.write(result.stdout);
    pump(result.code, result.stderr, result.more[Symbol.iterator]());
  } catch (err) {
    // A bug in one command must not take the relay down; the operator sees a short note, the log the detail.
    log.error({ err, command: split.words[0] }, 'command failed unexpectedly');
    finish(1, '', 'ferry: internal error while running the command; the relay log has the details\n');
  }
}
