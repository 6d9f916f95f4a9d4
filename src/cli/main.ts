/**
 * `agentwatch <command>`: one table of commands, each in its own module under `commands/`, loaded
 * only when used so `replay` does not pay for the Graph or Event Hubs clients.
 */
import { usageText, type CliCommand, type CliIO, type ExitCode } from './io';

const COMMANDS: Record<string, () => CliCommand> = {
  replay: () => require('./commands/replay').command,
  demo: () => require('./commands/demo').command,
  validate: () => require('./commands/validate').command,
  test: () => require('./commands/test').command,
  redrive: () => require('./commands/redrive').command,
  local: () => require('./commands/local').command,
  'grant-permissions': () => require('./commands/grantPermissions').command,
};

export async function main(argv: string[], io: CliIO): Promise<ExitCode> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(helpText());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    io.stderr.write(`agentwatch: unknown command ${JSON.stringify(name)}\n\n${helpText()}`);
    return 2;
  }
  const command = load();
  // Every command answers --help the same way, before it parses its own arguments.
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(usageText(command.usage));
    return 0;
  }
  return command.run(args, io);
}

function helpText(): string {
  const lines = Object.entries(COMMANDS).map(([name, load]) => {
    try {
      return `  ${name.padEnd(18)} ${load().summary}`;
    } catch {
      return `  ${name}`;
    }
  });
  return `usage: agentwatch <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

if (require.main === module) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() })
    .then((code) => {
      process.exitCode = code;
    })
    .catch((error: unknown) => {
      process.stderr.write(`agentwatch: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    });
}
