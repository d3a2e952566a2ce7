// The `veer` command line.

import { Command, Option } from 'commander';
import { addAdminCommands } from './admin-commands.ts';
import { formatIssue } from './format.ts';
import { addPipelineCommands } from './pipeline-commands.ts';
import { runValidate } from './validate.ts';

const DEFAULT_CONFIG = 'config/veer.yaml';

/** Builds the program; `exit` receives the exit code of the command that ran. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('veer')
    .description('Ingress reverse proxy for progressive delivery')
    .showHelpAfterError()
    .exitOverride((e) => {
      exit(e.exitCode);
      throw e;
    });

  program
    .command('serve')
    .description('run the proxy')
    .addOption(new Option('-c, --config <file>', 'config file').env('VEER_CONFIG'))
    .action(async (opts: { config?: string }) => {
      const file = opts.config ?? DEFAULT_CONFIG;
      // Loaded here so that the other commands start without the server stack.
      const { runServe, StartupError } = await import('../main.ts');
      try {
        exit(await runServe({ configPath: file }));
      } catch (err) {
        if (err instanceof StartupError) {
          process.stderr.write(`veer: ${err.message}\n`);
          for (const issue of err.issues) process.stderr.write(`${formatIssue(file, issue)}\n`);
          exit(1);
          return;
        }
        throw err;
      }
    });

  program
    .command('validate')
    .description('check a config file; prints every error with its path and line:column')
    .requiredOption('-c, --config <file>', 'config file')
    .action(async (opts: { config: string }) => {
      exit(
        await runValidate(
          opts.config,
          (s) => process.stdout.write(`${s}\n`),
          (s) => process.stderr.write(`${s}\n`),
        ),
      );
    });

  addAdminCommands(program, exit); // status, weights, explain, rollout, shift (talk to the admin API)
  addPipelineCommands(program, exit); // pipeline run, status, abort (a rollout through several veers)

  return program;
}

/** Entry point of the `veer` binary. */
export async function main(argv: readonly string[]): Promise<void> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('commander.')) {
      process.exitCode = code;
      return;
    }
    throw err;
  }
  process.exitCode = code;
}
