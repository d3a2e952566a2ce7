// The admin-talking commands, added to the `veer` program: status, weights,
// explain, rollout (start, pause, resume, promote, abort, status, watch),
// release (the same verbs for a release across services) and shift. Each takes --admin (default $VEER_ADMIN_URL, else
// http://127.0.0.1:9901), --token (default $VEER_ADMIN_TOKEN) and --json.

import { Command, Option } from 'commander';
import { DEFAULT_ADMIN_URL } from './admin-client.ts';
import { runExplain, type ExplainFlags } from './admin-explain.ts';
import { processIO, reportErrors, type AdminFlags } from './admin-io.ts';
import { runReleaseStatus, runReleaseVerb, runReleaseWatch, type ReleaseWatchFlags } from './admin-release.ts';
import { runRolloutStart, runRolloutStatus, runRolloutVerb, type StartFlags } from './admin-rollout.ts';
import { runShift, runShiftStop, type ShiftFlags } from './admin-shift.ts';
import { runStatus } from './admin-status.ts';
import { runWatch, type WatchFlags } from './admin-watch.ts';
import { runWeights } from './admin-weights.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

function withAdminOptions(command: Command): Command {
  return command
    .addOption(new Option('--admin <url>', 'admin API URL').env('VEER_ADMIN_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', 'admin token').env('VEER_ADMIN_TOKEN'))
    .option('--json', 'print the API answer as JSON');
}

/** Adds the admin-talking commands to `program`; `exit` receives each command's exit code. */
export function addAdminCommands(program: Command, exit: (code: number) => void): void {
  const run = async (fn: () => Promise<number>) => exit(await reportErrors(processIO, fn));

  withAdminOptions(program.command('status').description('services, versions, weights, sticky key and rollout state').argument('[service]', 'one service, with its rollout in detail'))
    .action(async (service: string | undefined, flags: AdminFlags) => run(() => runStatus(flags, service, processIO)));

  withAdminOptions(
    program
      .command('weights')
      .description("set a service's weights, e.g. veer weights shop v1=90 v2=10; --reset goes back to the config's")
      .argument('<service>')
      .argument('[weights...]', 'VERSION=WEIGHT pairs')
      .option('--reset', "drop the runtime weights: the config's weights apply again"),
  ).action(async (service: string, weights: string[], flags: AdminFlags & { reset?: boolean }) => run(() => runWeights(flags, service, weights, processIO)));

  withAdminOptions(
    program
      .command('explain')
      .description('which version a request gets, and why')
      .argument('<service>')
      .option('-H, --header <header>', "a request header, 'name: value' (repeatable)", collect, [])
      .option('--cookie <pair>', 'a cookie, name=value (repeatable)', collect, [])
      .option('--query <pair>', 'a query parameter, name=value (repeatable)', collect, [])
      .option('--path <path>', 'the request path', '/')
      .option('-X, --method <method>', 'the request method (rules: may match on it)'),
  ).action(async (service: string, flags: ExplainFlags) => run(() => runExplain(flags, service, processIO)));

  const rollout = program.command('rollout').description('drive a rollout: start, pause, resume, promote, abort, status, watch');
  withAdminOptions(
    rollout
      .command('start')
      .description("start the service's rollout plan")
      .argument('<service>')
      .option('--canary <version>', "override the plan's canary")
      .option('--steps <steps>', 'override the steps: WEIGHT[:PAUSE],... e.g. 5:30s,25:1m,100'),
  ).action(async (service: string, flags: StartFlags) => run(() => runRolloutStart(flags, service, processIO)));
  for (const verb of ['pause', 'resume', 'promote', 'abort'] as const) {
    const help = { pause: 'hold the rollout at its step', resume: 'continue a paused rollout', promote: 'give the canary 100% and end the rollout', abort: 'put 100% back on stable at once and end the rollout' }[verb];
    withAdminOptions(rollout.command(verb).description(help).argument('<service>').option('--reason <text>', 'why, for the history')).action(async (service: string, flags: AdminFlags & { reason?: string }) =>
      run(() => runRolloutVerb(flags, verb, service, processIO)),
    );
  }
  withAdminOptions(rollout.command('status').description('phase, step, weights and the last analysis').argument('<service>')).action(async (service: string, flags: AdminFlags) =>
    run(() => runRolloutStatus(flags, service, processIO)),
  );
  withAdminOptions(
    rollout
      .command('watch')
      .description('a live progress bar until the rollout ends: exit 0 when promoted, 1 when aborted')
      .argument('<service>')
      .option('--interval <ms>', 'poll interval in milliseconds', '500')
      .option('--timeout <seconds>', 'give up (exit 1) after this long; 0 = never', '0'),
  ).action(async (service: string, flags: WatchFlags) => run(() => runWatch(flags, service, processIO)));

  const release = program.command('release').description('drive a release across services: start, pause, resume, promote, abort, status, watch');
  for (const verb of ['start', 'pause', 'resume', 'promote', 'abort'] as const) {
    const help = {
      start: "start the configured release: every member's canary at the first step",
      pause: 'hold the release at its step',
      resume: 'continue a paused release',
      promote: "give every member's canary 100% and end the release",
      abort: 'put every member back on its weights before the release, at once',
    }[verb];
    withAdminOptions(release.command(verb).description(help).argument('<name>').option('--reason <text>', 'why, for the history')).action(async (name: string, flags: AdminFlags & { reason?: string }) =>
      run(() => runReleaseVerb(flags, verb, name, processIO)),
    );
  }
  withAdminOptions(release.command('status').description("phase, step, each member's weights and last check").argument('<name>')).action(async (name: string, flags: AdminFlags) =>
    run(() => runReleaseStatus(flags, name, processIO)),
  );
  withAdminOptions(
    release
      .command('watch')
      .description('one line per change until the release ends: exit 0 when promoted, 1 when aborted')
      .argument('<name>')
      .option('--interval <ms>', 'poll interval in milliseconds', '500')
      .option('--timeout <seconds>', 'give up (exit 1) after this long; 0 = never', '0'),
  ).action(async (name: string, flags: ReleaseWatchFlags) => run(() => runReleaseWatch(flags, name, processIO)));

  withAdminOptions(
    program
      .command('shift')
      .description('move weight gradually: veer shift shop --to v2 --step 10 --every 30s [--until 100]; --stop stops it')
      .argument('<service>')
      .option('--to <version>', 'the version that gains (or loses) weight')
      .option('--step <points>', 'percentage points per move')
      .option('--every <duration>', 'time between moves, e.g. 30s')
      .option('--until <percent>', 'stop when the version has this share', '100')
      .option('--stop', 'stop the running shift where it is'),
  ).action(async (service: string, flags: ShiftFlags) => run(() => (flags.stop ? runShiftStop(flags, service, processIO) : runShift(flags, service, processIO))));
}
