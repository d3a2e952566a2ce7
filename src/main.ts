// Wiring: config -> state -> data plane and admin, the reload loop, signals
// and drain. No routing or forwarding logic lives here.

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createAdminServer } from './admin/index.ts';
import {
  formatConfigPath,
  locateIssues,
  loadConfigFile,
  parseDuration,
  parseListenAddress,
  watchConfigFile,
  type Config,
  type ConfigIssue,
  type ConfigWatcher,
  type Locate,
} from './config/index.ts';
import { createDataPlane, type DataPlane } from './dataplane/index.ts';
import { UpstreamPools, type PooledUpstream } from './forwarder/index.ts';
import { createLogger, type Logger } from './log/index.ts';
import { createVeerMetrics, quantileOf, type MetricsText, type VeerMetrics } from './metrics/index.ts';

/** Seconds to milliseconds, rounded to 0.01 ms; null stays null. */
const msOf = (seconds: number | null): number | null => (seconds === null ? null : Math.round(seconds * 1e5) / 100);
import type { LevelWithSilent } from 'pino';
import { ConfigReloader, RouteState, RuntimeState, StateLoadError, openStateStore, readEtcdSecurity, storeHealth } from './state/index.ts';
import { RolloutEngine } from './rollout/index.ts';
import { resolveWorkerCount, serveFromWorkers } from './cluster/index.ts';

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
  /** Serves the data plane outside this process (node:cluster workers: `veer serve` with `workers` > 1). */
  readonly dataPlane?: (wiring: { state: RouteState; metrics: VeerMetrics; log: Logger }) => DataPlaneHost;
}

/** A data plane served by other processes (src/cluster); this one keeps the admin API, the state store and rollouts. */
export interface DataPlaneHost {
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  drain(deadlineMs: number): Promise<{ forced: number }>;
  readonly inFlight: number;
  /** /metrics summed over every process that serves. */
  render(): Promise<MetricsText>;
  /** Resolves once every serving process runs the published table; admin writes answer after it. */
  settled(): Promise<void>;
  /** Processes configured and serving: not ready while none serves (every worker crashed). */
  readonly workers: { readonly configured: number; readonly serving: number };
}

/** How long the start waits for the config watcher's first scan. */
const WATCH_READY_TIMEOUT_MS = 5000;

/** The cluster worker's entry point. */
const WORKER_ENTRY = fileURLToPath(new URL('./main-worker.ts', import.meta.url));

/** A running veer. */
export interface Veer {
  readonly config: () => Config;
  readonly dataAddress: { host: string; port: number };
  readonly adminAddress: { host: string; port: number };
  readonly state: RouteState;
  readonly reloader: ConfigReloader;
  /** The in-process data plane; idle (never listening) when `StartOptions.dataPlane` serves instead. */
  readonly dataPlane: DataPlane;
  readonly metrics: VeerMetrics;
  /** Runtime weights, rollouts, shifts and history (the admin API's commands go here). */
  readonly runtime: RuntimeState;
  readonly rollouts: RolloutEngine;
  readonly log: Logger;
  /** Stops accepting, drains in-flight requests (up to the config's drainTimeout), closes pools. */
  stop(): Promise<{ forced: number }>;
}

/** Loads the config or throws StartupError listing every problem. */
export async function loadConfigOrThrow(configPath: string, env: NodeJS.ProcessEnv): Promise<{ config: Config; text: string; locate: Locate }> {
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
  // etcd's TLS files (relative to the config file, like state.path), read once: a missing one stops the start.
  const security = readEtcdSecurity(config.state, dirname(configPath));
  if (!security.ok) throw new StartupError(`invalid config ${configPath}`, locateIssues(security.issues, loaded.locate));

  const pools = new UpstreamPools();
  const state = new RouteState((origin, service) => pools.bind(origin, parseDuration(service.timeouts.connect)));
  // --- metrics wiring: per-version series bound and weight gauges set on every publish ---
  // Quarter-second slots (5 minutes kept) so rollout analysis reads windows as short as its interval.
  const metrics = createVeerMetrics({ window: { slotMs: 250, slots: 1200 } });
  state.onPublish((table) => metrics.observeTable(table));
  // --- end metrics wiring ---
  state.onPublish((table) => {
    const inUse = new Set<string>();
    for (const service of table.services) for (const v of service.versions) for (const u of v.upstreams) inUse.add((u as PooledUpstream).key);
    pools.retainOnly(inUse);
  });
  const compiled = state.applyConfig(config);
  if (!compiled.ok) {
    throw new StartupError(`invalid config ${configPath}`, locateIssues(compiled.issues, loaded.locate));
  }
  for (const w of compiled.warnings) log.warn({ code: w.code, path: formatConfigPath(w.path) }, w.message);
  if (options.dataPlane === undefined && typeof config.workers === 'number' && config.workers > 1) {
    log.warn({ workers: config.workers }, 'workers apply to `veer serve`; this veer serves from one process');
  }

  // --- runtime state and rollouts: the state file (relative to the config file) wins over the config's weights ---
  const store = openStateStore(config.state, dirname(configPath), log, security.security); // file (default) or etcd
  const runtime = new RuntimeState({ routes: state, store, log });
  try {
    for (const w of await runtime.start()) log.warn({ code: w.code, path: formatConfigPath(w.path), store: store.description }, w.message);
  } catch (err) {
    await store.close?.();
    await pools.close(true);
    if (!(err instanceof StateLoadError)) throw err;
    const code = err.kind === 'corrupt' ? 'state_corrupt' : 'store_unavailable';
    throw new StartupError(`${err.message} [${code}]; veer does not overwrite it: fix the file, or move it away to start from the config's weights`);
  }
  // Started (timers resumed) once both listeners are up.
  const rollouts = new RolloutEngine({ runtime, stats: metrics.recorder, log, phases: metrics });
  // --- end runtime state ---

  const reloader = new ConfigReloader(configPath, state, log, loaded.text, env);
  reloader.onResult((outcome, next) => {
    if (outcome === 'success' && next) config = next;
  });
  reloader.onResult((outcome) => metrics.countReload(outcome)); // metrics wiring

  const dataPlane = createDataPlane({ table: () => state.table, log, observer: metrics.recorder });
  const host = options.dataPlane?.({ state, metrics, log }) ?? null; // cluster wiring
  const served = host ?? dataPlane;
  if (host !== null) runtime.settleWith(() => host.settled()); // cluster wiring: applied once the workers serve it
  const admin = createAdminServer({
    ready: () => state.ready,
    reloads: () => reloader.stats,
    generation: () => (state.ready ? state.table.generation : null),
    metrics: () => (host === null ? metrics.render() : host.render()), // metrics wiring
    settle: host === null ? undefined : () => host.settled(), // cluster wiring
    workers: host === null ? undefined : () => host.workers, // cluster wiring
    api: {
      runtime,
      rollouts,
      token: () => config.admin.token,
      // The dashboard's numbers: the same per-version windows rollout analysis reads.
      stats: (service, version, spanMs) => {
        const w = metrics.recorder.readWindow(service, version, spanMs);
        return w === null
          ? null
          : { spanMs: w.spanMs, requests: w.requests, errors: w.errors, errorRatio: w.errorRatio, p50Ms: msOf(quantileOf(w, 0.5)), p99Ms: msOf(quantileOf(w, 0.99)) };
      },
    },
    store: () => storeHealth(store),
  });

  const listen = parseListenAddress(config.listen)!;
  const adminListen = parseListenAddress(config.admin.listen)!;
  let dataAddress: { host: string; port: number };
  try {
    dataAddress = await served.listen(listen.host, listen.port);
  } catch (err) {
    await store.close?.();
    await pools.close(true);
    throw new StartupError(`cannot listen on ${config.listen}: ${(err as Error).message}`);
  }
  try {
    await admin.listen({ host: adminListen.host, port: adminListen.port });
  } catch (err) {
    await served.drain(0);
    await store.close?.();
    await pools.close(true);
    throw new StartupError(`cannot listen on admin ${config.admin.listen}: ${(err as Error).message}`);
  }
  const adminInfo = admin.server.address() as AddressInfo;
  const adminAddress = { host: adminInfo.address, port: adminInfo.port };
  rollouts.start(); // resumes stored rollouts and shifts at their step

  let watcher: ConfigWatcher | null = null;
  if (options.watch !== false) {
    watcher = watchConfigFile(configPath, () => void reloader.reload('file changed'));
    // "veer is serving" promises that edits are seen: wait for the watcher's first scan (bounded,
    // a slow filesystem must not hold the start), then look once for an edit made before it.
    await Promise.race([watcher.ready, new Promise((resolve) => setTimeout(resolve, WATCH_READY_TIMEOUT_MS).unref())]);
    void reloader.reload('file changed while the watch started');
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
    metrics,
    runtime,
    rollouts,
    log,
    stop() {
      stopping ??= (async () => {
        await rollouts.stop(); // timers off; a state command in flight finishes first
        await store.close?.(); // etcd: gives up the lease, so another replica leads at once
        await watcher?.close();
        const deadline = parseDuration(config.drainTimeout);
        log.info({ inFlight: served.inFlight, deadlineMs: deadline }, 'draining');
        const [result] = await Promise.all([served.drain(deadline), admin.close()]);
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
  // workers > 1: this process becomes the cluster primary and the data plane runs in node:cluster workers.
  const workers = resolveWorkerCount((await loadConfigOrThrow(resolve(options.configPath), options.env ?? process.env)).config.workers);
  const veer = await startVeer(workers > 1 && options.dataPlane === undefined ? { ...options, dataPlane: serveFromWorkers({ workers, exec: WORKER_ENTRY }) } : options);
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
