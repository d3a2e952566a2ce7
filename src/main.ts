// Wiring: config -> state -> data plane and admin, the reload loop, signals
// and drain. No routing or forwarding logic lives here.

import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createAdminServer } from './admin/index.ts';
import {
  formatConfigPath,
  loadConfigFile,
  parseDuration,
  parseListenAddress,
  watchConfigFile,
  type Config,
  type ConfigIssue,
  type ConfigWatcher,
} from './config/index.ts';
import { createDataPlane, type DataPlane } from './dataplane/index.ts';
import { UpstreamPools, type PooledUpstream } from './forwarder/index.ts';
import { createLogger, type Logger } from './log/index.ts';
import type { LevelWithSilent } from 'pino';
import { ConfigReloader, RouteState } from './state/index.ts';

/** Raised when veer cannot start; `issues` holds every config problem found. */
export class StartupError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(message: string, issues: readonly ConfigIssue[] = []) {
    super(message);
    this.name = 'StartupError';
    this.issues = issues;
  }
}

/** How to start veer. */
export interface StartOptions {
  readonly configPath: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  /** Watch the config file for changes (default true). */
  readonly watch?: boolean;
}

/** A running veer. */
export interface Veer {
  readonly config: () => Config;
  readonly dataAddress: { host: string; port: number };
  readonly adminAddress: { host: string; port: number };
  readonly state: RouteState;
  readonly reloader: ConfigReloader;
  readonly dataPlane: DataPlane;
  readonly log: Logger;
  /** Stops accepting, drains in-flight requests (up to the config's drainTimeout), closes pools. */
  stop(): Promise<{ forced: number }>;
}

/** Loads the config or throws StartupError listing every problem. */
export async function loadConfigOrThrow(configPath: string, env: NodeJS.ProcessEnv): Promise<{ config: Config; text: string; locate: (p: readonly (string | number)[]) => { line: number; column: number } | undefined }> {
  const loaded = await loadConfigFile(configPath, env);
  if (!loaded.ok) throw new StartupError(`invalid config ${configPath}`, loaded.issues);
  return loaded;
}

/** Starts veer on a config file. */
export async function startVeer(options: StartOptions): Promise<Veer> {
  const env = options.env ?? process.env;
  const configPath = resolve(options.configPath);
  const loaded = await loadConfigOrThrow(configPath, env);
  let config = loaded.config;
  const log = options.log ?? createLogger(config.log.level as LevelWithSilent);

  const pools = new UpstreamPools();
  const state = new RouteState((origin, service) => pools.bind(origin, parseDuration(service.timeouts.connect)));
  state.onPublish((table) => {
    const inUse = new Set<string>();
    for (const service of table.services) for (const v of service.versions) for (const u of v.upstreams) inUse.add((u as PooledUpstream).key);
    pools.retainOnly(inUse);
  });
  const compiled = state.applyConfig(config);
  if (!compiled.ok) {
    const issues = compiled.issues.map((i) => ({ code: i.code, path: formatConfigPath(i.path), message: i.message, ...loaded.locate(i.path) }));
    throw new StartupError(`invalid config ${configPath}`, issues);
  }
  for (const w of compiled.warnings) log.warn({ code: w.code, path: formatConfigPath(w.path) }, w.message);
  if (config.workers !== 1) log.warn({ workers: config.workers }, 'workers > 1 is not available yet; serving from one process');
  if (config.state.store !== 'file') log.warn({ store: config.state.store }, 'only the file state store is available yet');

  const reloader = new ConfigReloader(configPath, state, log, loaded.text, env);
  reloader.onResult((outcome, next) => {
    if (outcome === 'success' && next) config = next;
  });

  const dataPlane = createDataPlane({ table: () => state.table, log });
  const admin = createAdminServer({
    ready: () => state.ready,
    reloads: () => reloader.stats,
    generation: () => (state.ready ? state.table.generation : null),
  });

  const listen = parseListenAddress(config.listen)!;
  const adminListen = parseListenAddress(config.admin.listen)!;
  let dataAddress: { host: string; port: number };
  try {
    dataAddress = await dataPlane.listen(listen.host, listen.port);
  } catch (err) {
    await pools.close(true);
    throw new StartupError(`cannot listen on ${config.listen}: ${(err as Error).message}`);
  }
  try {
    await admin.listen({ host: adminListen.host, port: adminListen.port });
  } catch (err) {
    await dataPlane.drain(0);
    await pools.close(true);
    throw new StartupError(`cannot listen on admin ${config.admin.listen}: ${(err as Error).message}`);
  }
  const adminInfo = admin.server.address() as AddressInfo;
  const adminAddress = { host: adminInfo.address, port: adminInfo.port };

  let watcher: ConfigWatcher | null = null;
  if (options.watch !== false) {
    watcher = watchConfigFile(configPath, () => void reloader.reload('file changed'));
  }

  log.info(
    { config: configPath, listen: `${dataAddress.host}:${dataAddress.port}`, admin: `${adminAddress.host}:${adminAddress.port}`, services: state.table.services.length },
    'veer is serving',
  );

  let stopping: Promise<{ forced: number }> | null = null;
  return {
    config: () => config,
    dataAddress,
    adminAddress,
    state,
    reloader,
    dataPlane,
    log,
    stop() {
      stopping ??= (async () => {
        await watcher?.close();
        const deadline = parseDuration(config.drainTimeout);
        log.info({ inFlight: dataPlane.inFlight, deadlineMs: deadline }, 'draining');
        const [result] = await Promise.all([dataPlane.drain(deadline), admin.close()]);
        await pools.close(result.forced > 0);
        log.info({ forced: result.forced }, 'stopped');
        return result;
      })();
      return stopping;
    },
  };
}

/** Runs veer until SIGTERM/SIGINT; SIGHUP reloads. Resolves with the exit code. */
export async function runServe(options: StartOptions): Promise<number> {
  const veer = await startVeer(options);
  const onHup = () => void veer.reloader.reload('SIGHUP');
  process.on('SIGHUP', onHup);
  return await new Promise<number>((resolveExit) => {
    const onStop = (signal: NodeJS.Signals) => {
      veer.log.info({ signal }, 'shutting down');
      process.off('SIGHUP', onHup);
      veer.stop().then(
        () => resolveExit(0),
        (err: unknown) => {
          veer.log.error({ err }, 'error while stopping');
          resolveExit(1);
        },
      );
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
  });
}
