/** What an operator's OpenSSH needs to reach the devices it may reach as NAME.ferry. */
import { FerryError } from '../../common/errors.ts';
import { DEVICE_HOST_SUFFIX } from '../../protocol/names.ts';
import { relayHostPort } from '../relay-address.ts';
import { subjectOf, userSubject, type Operation } from './operation.ts';
import { visibleDevices } from './devices.ts';

/** `user`: the relay user the config logs in as (default: the caller; the local CLI must give one for the config). */
export interface SshConfigInput { user?: string }

/**
 * An ssh_config with the relay as ProxyJump, and known_hosts lines for the relay and for
 * every device the user may reach that reported its host key, so that the first
 * connection has no trust-on-first-use prompt and a changed device key is a loud error.
 * `config` is null when no user is known (the local CLI without --user).
 */
export const sshConfig: Operation<SshConfigInput, { config: string | null; knownHosts: string[] }> = {
  name: 'ssh-config',
  action: null,
  run(ctx, principal, input) {
    const user = input.user ?? (principal.kind === 'local' ? null : principal.user);
    // On the relay host, a config for a named user lists what that user may reach.
    let viewer = subjectOf(ctx, principal);
    if (principal.kind === 'local' && user !== null) {
      if (!ctx.store.getUser(user)) throw new FerryError('FERRY_NOT_FOUND', `no user named '${user}'; 'users' lists them`);
      viewer = userSubject(ctx.store, user);
    }
    const { host, port } = relayHostPort(ctx.relay.publicAddress);
    const relayHost = port === 22 ? host : `[${host}]:${port}`;
    const devices = visibleDevices(ctx, viewer).filter((d) => d.status === 'approved');
    const knownHosts = [
      ...(ctx.relay.hostKeyLine ? [`${relayHost} ${ctx.relay.hostKeyLine}`] : []),
      ...devices.filter((d) => d.hostKeyLine).map((d) => `${d.name}${DEVICE_HOST_SUFFIX},${d.name} ${d.hostKeyLine}`),
    ];
    if (user === null) return { config: null, knownHosts };
    const common = ['  UserKnownHostsFile ~/.ssh/ferry_known_hosts', '  StrictHostKeyChecking yes'];
    const config = [
      `# ferry: reach a device as NAME${DEVICE_HOST_SUFFIX} (e.g. ssh pi@garage-cam${DEVICE_HOST_SUFFIX}) through the relay at ${ctx.relay.publicAddress}.`,
      '# Save this as ~/.ssh/ferry.conf and put "Include ferry.conf" at the top of ~/.ssh/config; save the',
      `# output of 'ssh-config --known-hosts' as ~/.ssh/ferry_known_hosts (again whenever devices are added).`,
      'Host ferry-relay', `  HostName ${host}`, `  Port ${port}`, `  User ${user}`, ...common, '',
      `Host *${DEVICE_HOST_SUFFIX}`, '  ProxyJump ferry-relay', ...common, '',
    ].join('\n');
    return { config, knownHosts };
  },
};
