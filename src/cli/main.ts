/**
 * The `ferry` command line. The only place that reads process.env, writes the final error
 * and calls process.exit: components report problems as FerryErrors and return.
 */
import { isFerryError } from '../common/errors.ts';
import { VERSION } from '../protocol/version.ts';
import { USAGE as COMMAND_USAGE } from '../relay/commands.ts';
import { AGENT_FLAGS, agentMain } from './agent-command.ts';
import { DEMO_FLAGS, demoMain } from './demo.ts';
import { LOCAL_COMMANDS, localCommandMain } from './local-command.ts';
import { flagHelp, wantsHelp, type FlagSpec } from './options.ts';
import { RELAY_FLAGS, relayMain } from './relay-command.ts';

const HELP = `ferry ${VERSION}: reach devices behind NAT and firewalls by name, with stock OpenSSH.

usage:
  ferry relay --data-dir DIR [--admin-key FILE] [flags]      run the relay
  ferry agent --state-dir DIR [--token TOKEN] [flags]        run the agent on a device
  ferry demo                                                 a relay and a device on this machine
  ferry COMMAND ... --data-dir DIR                           an operator command on the relay host
  ferry help [relay|agent|demo|commands] | ferry --version
  ferry relay|agent|demo --help                              the same as ferry help relay|agent|demo

relay flags:
${flagHelp(RELAY_FLAGS)}

agent flags:
${flagHelp(AGENT_FLAGS)}

demo flags:
${flagHelp(DEMO_FLAGS)}

Every component also takes --config FILE: a JSON object whose keys are the flag names.
Logs are text on a terminal and JSON lines otherwise; --log-format json|pretty decides.
`;

/** `ferry help [relay|agent|demo|commands]`: one part's flags, or everything. */
function helpFor(topic: string | undefined): string {
  const sections: Record<string, [string, Record<string, FlagSpec>]> = {
    relay: ['ferry relay --data-dir DIR [--admin-key FILE] [flags]', RELAY_FLAGS],
    agent: ['ferry agent --state-dir DIR [--token TOKEN] [flags]', AGENT_FLAGS],
    demo: ['ferry demo [flags]', DEMO_FLAGS],
  };
  if (topic === 'commands') return COMMAND_USAGE + '\n';
  const section = topic === undefined ? undefined : sections[topic];
  if (!section) return HELP;
  return `usage: ${section[0]}\n\n${flagHelp(section[1])}\n${'  --config FILE'.padEnd(34)} a JSON object whose keys are these flag names\n`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if ((command === 'relay' || command === 'agent' || command === 'demo') && wantsHelp(rest)) {
    process.stdout.write(helpFor(command));
    return 0;
  }
  switch (command) {
    case 'relay': return relayMain(rest, process.env, process.stdout);
    case 'agent': return agentMain(rest, process.env, process.stdout, process.stderr);
    case 'demo': return demoMain(rest, process.env, process.stdout);
    case '--version': case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(helpFor(rest[0]));
      return command === undefined ? 2 : 0;
    default:
      if (LOCAL_COMMANDS.has(command)) return localCommandMain(argv, process.env, process.stdout, process.stderr);
      process.stderr.write(`ferry: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isFerryError(err)) {
      process.stderr.write(`ferry: ${err.message}\n`);
      if (err.code === 'FERRY_USAGE' && !err.message.includes('ferry help')) process.stderr.write("run 'ferry help' for the flags\n");
      process.exit(err.code === 'FERRY_USAGE' || err.code === 'FERRY_CONFIG_INVALID' ? 2 : 1);
    }
    // Not one of ours: a bug. Say so plainly, with the detail for the report.
    process.stderr.write(`ferry: unexpected internal error (please report it): ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(70);
  },
);
