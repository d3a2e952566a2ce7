// The `veer` command line.

import { Command, Option } from 'commander';
import { formatIssue } from './format.ts';
import { runValidate } from './validate.ts';

const DEFAULT_CONFIG = 'config/veer.yaml';

/** The commands that need nothing but the config and main.ts: `veer serve` loads no other command's code. */
const LOCAL_COMMANDS: ReadonlySet<string> = new Set(['serve', 'validate', 'import']);

/**
 * Builds the program; `exit` receives the exit code of the command that ran.
 * For `serve` and `validate` (`command`) the admin and pipeline commands are
 * not loaded: their modules (HTTP client, plan schemas, terminal views) were
 * a third of veer's start time.
 */
export async function buildProgram(exit: (code: number) => void, command?: string): Promise<Command> {
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

  program
    .command('import')
    .description('print the veer config of Kubernetes manifests (HTTPRoute, Ingress, Argo Rollout, Flagger Canary); exit 2 when a field was left out')
    .argument('<paths...>', 'files or folders of manifests')
    .option('--backend-url <template>', 'upstream of a backend Service, with {name}, {namespace}, {port}')
    .option('--ingress-class <name...>', 'Ingress classes veer serves (default: veer, nginx)')
    .action(async (paths: string[], opts: { backendUrl?: string; ingressClass?: string[] }) => {
      const { runImport } = await import('./import.ts');
      exit(
        await runImport(
          paths,
          { ...(opts.backendUrl !== undefined && { backendUrl: opts.backendUrl }), ...(opts.ingressClass !== undefined && { ingressClasses: opts.ingressClass }) },
          (s) => process.stdout.write(`${s}\n`),
          (s) => process.stderr.write(`${s}\n`),
        ),
      );
    });

  if (command === undefined || !LOCAL_COMMANDS.has(command)) {
    const [{ addAdminCommands }, { addPipelineCommands }] = await Promise.all([import('./admin-commands.ts'), import('./pipeline-commands.ts')]);
    addAdminCommands(program, exit); // status, weights, explain, rollout, shift (talk to the admin API)
    addPipelineCommands(program, exit); // pipeline run, status, abort (a rollout through several veers)
  }

  return program;
}

/** Entry point of the `veer` binary. */
export async function main(argv: readonly string[]): Promise<void> {
  let code = 0;
  const program = await buildProgram((c) => {
    code = c;
  }, argv[2]);
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
