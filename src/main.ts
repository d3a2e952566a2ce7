// Wiring: config source -> table publisher -> data plane (or cluster workers)
// and admin API; state store, rollouts, metrics; the reload loop, signals and
// drain. Each piece's logic lives in its room; this file only connects them.

import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { LevelWithSilent } from 'pino';
import { createAdminServer, type EndpointView } from './admin/index.ts';
import { resolveWorkerCount, serveFromWorkers } from './cluster/index.ts';
import {
  FileConfigSource,
  formatConfigPath,
  locateIssues,
  parseDuration,
  parseListenAddress,
  readEtcdSecurity,
  readPemFile,
  restartOnlyChanges,
  type Config,
  type ConfigIssue,
  type ConfigLoadResult,
  type ConfigSource,
  type PathIssue,
  type ConfigWatcher,
} from './config/index.ts';
import { createDataPlane, openCertificateStore, openTracing, releaseStartupHeap, type CertificateStore, type DataPlane } from './dataplane/index.ts';
import { createLogger, type Logger } from './log/index.ts';
import { createVeerMetrics, VERSION_WINDOW, type MetricsText, type VeerMetrics } from './metrics/index.ts';
import { FleetWindows, LocalWindowsSource, ReleaseEngine, RolloutEngine } from './rollout/index.ts';
import { describeRequest, explainChoice } from './router/index.ts';
import { ConfigReloader, ROLLOUT_PHASES, RuntimeState, StateLoadError, TablePublisher, openStateStore } from './state/index.ts';
import { compileTable, type RouteTable } from './table/index.ts';

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
  readonly dataPlane?: (wiring: { state: TablePublisher; metrics: VeerMetrics; log: Logger }) => DataPlaneHost;
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
  /** The TLS listener's address once listening (null without `tls`). */
  readonly tlsAddress: { readonly host: string; readonly port: number } | null;
}

/** The endpoints of `service` as this process's data plane has them. */
function endpointsServedHere(dataPlane: DataPlane, table: RouteTable, service: string): EndpointView[] {
  const out: EndpointView[] = [];
  for (const { version, endpoint } of dataPlane.upstreams.endpointStates(table)) {
    if (version.service.name === service) out.push({ version: version.name, endpoint: endpoint.origin.replace(/^https?:\/\//, ''), up: endpoint.up });
  }
  return out;
}

/** The endpoints of `service` read from veer_endpoint_up in a /metrics text. */
function endpointsFromMetrics(text: string, service: string): EndpointView[] {
  const out: EndpointView[] = [];
  const prefix = `veer_endpoint_up{service=${JSON.stringify(service)},`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    out.push({ version: labels.version ?? '', endpoint: labels.endpoint ?? '', up: line.endsWith(' 1') });
  }
  return out;
}

/** How long the start waits for the config watcher's first scan. */
const WATCH_READY_TIMEOUT_MS = 5000;

/** The cluster worker's entry point (next to this file: .ts from the sources, .js when built). */
const WORKER_ENTRY = fileURLToPath(new URL(`./main-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** A running veer. */
export interface Veer {
  readonly config: () => Config;
  readonly dataAddress: { host: string; port: number };
  readonly adminAddress: { host: string; port: number };
  /** The TLS listener's address (null without `tls`). */
  readonly tlsAddress: { readonly host: string; readonly port: number } | null;
  readonly state: TablePublisher;
  readonly reloader: ConfigReloader;
  /** The in-process data plane; idle (never listening) when `StartOptions.dataPlane` serves instead. */
  readonly dataPlane: DataPlane;
  readonly metrics: VeerMetrics;
  /** Runtime weights, rollouts, shifts and history (the admin API's commands go here). */
  readonly runtime: RuntimeState;
  readonly rollouts: RolloutEngine;
  readonly releases: ReleaseEngine;
  readonly log: Logger;
  /** Stops accepting, drains in-flight requests (up to the config's drainTimeout), closes pools. */
  stop(): Promise<{ forced: number }>;
}

/** A config file that validates and compiles, or every problem found in it and in the files it names. */
export type ConfigCheck = { readonly ok: true; readonly config: Config; readonly table: RouteTable } | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Everything `veer validate` and the start check: the YAML, its schema, the compile, and the files it names. */
export function checkLoadedConfig(loaded: ConfigLoadResult, configPath: string): ConfigCheck {
  if (!loaded.ok) return { ok: false, issues: loaded.issues };
  const compiled = compileTable(loaded.config);
  if (!compiled.ok) return { ok: false, issues: locateIssues(compiled.issues, loaded.locate) };
  // An included object veer would leave out (include:) fails validation: CI hears of it before a deploy.
  if (loaded.warnings !== undefined && loaded.warnings.length > 0) return { ok: false, issues: loaded.warnings };
  const files = readEtcdSecurity(loaded.config.state, dirname(configPath));
  if (!files.ok) return { ok: false, issues: locateIssues(files.issues, loaded.locate) };
  const certificates = [...checkCertificates(loaded.config, configPath), ...checkUpstreamTlsFiles(loaded.config, configPath), ...checkRolloutFiles(loaded.config, configPath)];
  if (certificates.length > 0) return { ok: false, issues: locateIssues(certificates, loaded.locate) };
  return { ok: true, config: loaded.config, table: compiled.table };
}

/** The problems of the TLS listener's certificates (none without `tls`), as config issues. */
function checkCertificates(config: Config, configPath: string): PathIssue[] {
  if (config.tls === undefined) return [];
  const { store, problems } = openCertificateStore(config.tls, dirname(configPath));
  store.close();
  return problems.map((p) => ({ code: 'invalid_tls_certificate', path: p.path, message: `${p.cert}: ${p.message}` }));
}

/** The PEM files of https:// upstreams (`upstream.tls`): each readable and PEM, a certificate with its key. */
function checkUpstreamTlsFiles(config: Config, configPath: string): PathIssue[] {
  const issues: PathIssue[] = [];
  config.services.forEach((service, si) => {
    service.versions.forEach((version, vi) => {
      const tls = typeof version.upstream === 'object' && !Array.isArray(version.upstream) ? version.upstream.tls : undefined;
      if (tls === undefined) return;
      const at = ['services', si, 'versions', vi, 'upstream', 'tls'];
      for (const key of ['ca', 'cert', 'key'] as const) {
        const file = tls[key];
        if (file !== undefined) readPemFile(file, dirname(configPath), [...at, key], 'invalid_upstream', issues);
      }
      if ((tls.cert === undefined) !== (tls.key === undefined)) issues.push({ code: 'invalid_upstream', path: at, message: 'cert and key go together (a client certificate needs its key)' });
    });
  });
  return issues;
}

/** The CA files of rollouts' `analysis.prometheus.ca`: each readable and PEM. */
function checkRolloutFiles(config: Config, configPath: string): PathIssue[] {
  const issues: PathIssue[] = [];
  config.services.forEach((service, si) => {
    const ca = service.rollout?.analysis?.prometheus?.ca;
    if (ca !== undefined) readPemFile(ca, dirname(configPath), ['services', si, 'rollout', 'analysis', 'prometheus', 'ca'], 'invalid_analysis', issues);
  });
  return issues;
}

/** `veer validate`: checks a config file as `veer serve` would at start. */
export async function checkConfigFile(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigCheck> {
  const source = new FileConfigSource(configPath, env);
  return checkLoadedConfig(await source.read(), source.path);
}

/** Reads the source or throws StartupError listing every problem. */
async function readOrThrow(source: ConfigSource): Promise<Extract<ConfigLoadResult, { ok: true }>> {
  const loaded = await source.read();
  if (!loaded.ok) throw new StartupError(`invalid config ${source.description}`, loaded.issues);
  return loaded;
}

/** Starts veer on a config file. */
export async function startVeer(options: StartOptions): Promise<Veer> {
  const source = new FileConfigSource(options.configPath, options.env ?? process.env);
  return startFrom(source, await readOrThrow(source), options);
}

async function startFrom(source: FileConfigSource, loaded: Extract<ConfigLoadResult, { ok: true }>, options: StartOptions): Promise<Veer> {
  const configPath = source.path;
  let config = loaded.config;
  const log = options.log ?? createLogger(config.log.level as LevelWithSilent);
  for (const w of loaded.warnings ?? []) log.error({ code: w.code, path: w.path }, `${w.path}: ${w.message}`);
  // etcd's TLS files (relative to the config file, like state.path), read once: a missing one stops the start.
  const security = readEtcdSecurity(config.state, dirname(configPath));
  if (!security.ok) throw new StartupError(`invalid config ${configPath}`, locateIssues(security.issues, loaded.locate));

  const upstreamFiles = [...checkUpstreamTlsFiles(config, configPath), ...checkRolloutFiles(config, configPath)];
  if (upstreamFiles.length > 0) throw new StartupError(`invalid config ${configPath}`, locateIssues(upstreamFiles, loaded.locate));
  for (const service of config.services) {
    for (const version of service.versions) {
      if (typeof version.upstream === 'object' && !Array.isArray(version.upstream) && version.upstream.tls?.insecureSkipVerify === true) {
        log.warn({ service: service.name, version: version.name }, 'insecureSkipVerify: the upstream certificate is NOT verified; anyone on the path can impersonate it');
      }
    }
  }
  // The TLS listener's certificates, read once here (a broken one stops the start), then polled.
  let certificates: CertificateStore | null = null;
  if (config.tls !== undefined) {
    const opened = openCertificateStore(config.tls, dirname(configPath), (p) => log.error({ cert: p.cert, error: p.message }, 'TLS certificate not usable; the last good one keeps serving'));
    if (opened.problems.length > 0) {
      opened.store.close();
      throw new StartupError(`invalid config ${configPath}`, locateIssues(opened.problems.map((p) => ({ code: 'invalid_tls_certificate', path: p.path, message: `${p.cert}: ${p.message}` })), loaded.locate));
    }
    certificates = opened.store;
    certificates.watch();
  }

  const state = new TablePublisher();
  const metrics = createVeerMetrics({ window: VERSION_WINDOW, rolloutPhases: ROLLOUT_PHASES });
  if (certificates !== null) metrics.readCertificatesFrom(certificates);
  state.onPublish((table) => metrics.observeTable(table));
  const compiled = state.applyConfig(config);
  if (!compiled.ok) throw new StartupError(`invalid config ${configPath}`, locateIssues(compiled.issues, loaded.locate));
  for (const w of compiled.warnings) log.warn({ code: w.code, path: formatConfigPath(w.path) }, w.message);
  if (options.dataPlane === undefined && typeof config.workers === 'number' && config.workers > 1) {
    log.warn({ workers: config.workers }, 'workers apply to `veer serve`; this veer serves from one process');
  }

  // The state store (relative to the config file) wins over the config's weights.
  const store = await openStateStore(config.state, dirname(configPath), log, security.security);
  const runtime = new RuntimeState({ routes: state, store, log });
  try {
    for (const w of await runtime.start()) log.warn({ code: w.code, path: formatConfigPath(w.path), store: store.description }, w.message);
  } catch (err) {
    await store.close();
    if (!(err instanceof StateLoadError)) throw err;
    throw new StartupError(`${err.message} [${err.code}]; veer does not overwrite it: fix the file, or move it away to start from the config's weights`);
  }
  // Started (timers resumed) once both listeners are up.
  // With several replicas (etcd), checks read every live replica's windows (rollout/fleet-windows.ts).
  const fleet = store.fleet === undefined ? null : new FleetWindows({ runtime, windows: metrics.recorder, board: store.fleet, log });
  const analysis = fleet ?? new LocalWindowsSource(metrics.recorder);
  const rollouts = new RolloutEngine({ runtime, analysis, log, phases: metrics, configDir: dirname(configPath) });
  const releases = new ReleaseEngine({ runtime, analysis, log, phases: metrics, configDir: dirname(configPath) });

  const reloader = new ConfigReloader(source, state, log, loaded.text, (task) => runtime.exclusive(task));
  reloader.onResult((outcome, next, previous) => {
    metrics.countReload(outcome);
    if (next === null) return;
    config = next;
    // A logger handed in by the caller keeps the caller's level.
    if (options.log === undefined) log.level = next.log.level;
    for (const key of restartOnlyChanges(previous, next)) log.warn({ key }, `${key} changed in the config; it applies at the next restart (the rest of the config is applied)`);
  });

  // log.access is read once (a reload that flips it warns: restart-only); 1 is stdout.
  const dataPlane = createDataPlane({
    table: () => state.table,
    log,
    observer: metrics.recorder,
    accessLog: config.log.access ? 1 : null,
    tracing: config.tracing === undefined ? null : openTracing(config.tracing, parseDuration(config.tracing.otlp?.timeout ?? '5s'), log, (count) => metrics.countDroppedSpans(count)),
    configDir: dirname(configPath),
    tls: certificates === null ? null : { certificates, redirectHttp: config.tls!.redirectHttp, http2: config.tls!.http2 },
    h2c: config.h2c,
  });
  metrics.readEndpointsFrom(() => dataPlane.upstreams.endpointStates(state.table));
  metrics.readMirrorsFrom(() => dataPlane.upstreams.mirrorCounts());
  const host = options.dataPlane?.({ state, metrics, log }) ?? null;
  const served = host ?? dataPlane;
  if (host !== null) runtime.settleWith(() => host.settled()); // applied once the workers serve it
  const admin = createAdminServer({
    ready: () => state.ready,
    reloads: () => reloader.stats,
    generation: () => (state.ready ? state.table.generation : null),
    metrics: () => (host === null ? metrics.render() : host.render()),
    settle: host === null ? undefined : () => host.settled(),
    workers: host === null ? undefined : () => host.workers,
    ...(certificates !== null && { certificates: () => certificates.list() }),
    api: {
      runtime,
      rollouts,
      releases,
      token: () => config.admin.token,
      explain: (service, request) => explainChoice(service, describeRequest(request)),
      // The dashboard's numbers: the same per-version windows rollout analysis reads.
      stats: (service, version, spanMs) => metrics.recorder.readSummary(service, version, spanMs),
      // In one process, the data plane's own view; with workers, what /metrics aggregates (1 only
      // when every worker has the endpoint in rotation), read from veer_endpoint_up.
      endpoints: async (service) => (host === null ? endpointsServedHere(dataPlane, state.table, service) : endpointsFromMetrics((await host.render()).body, service)),
    },
    store: () => store.health(),
  });

  const listen = parseListenAddress(config.listen)!;
  const adminListen = parseListenAddress(config.admin.listen)!;
  let dataAddress: { host: string; port: number };
  try {
    dataAddress = await served.listen(listen.host, listen.port);
  } catch (err) {
    await store.close();
    throw new StartupError(`cannot listen on ${config.listen}: ${(err as Error).message}`);
  }
  let tlsAddress: { host: string; port: number } | null = host?.tlsAddress ?? null;
  if (certificates !== null && host === null) {
    const at = parseListenAddress(config.tls!.listen)!;
    try {
      tlsAddress = await dataPlane.listenTls(at.host, at.port);
    } catch (err) {
      await served.drain(0);
      await store.close();
      throw new StartupError(`cannot listen on tls.listen ${config.tls!.listen}: ${(err as Error).message}`);
    }
  }
  try {
    await admin.listen({ host: adminListen.host, port: adminListen.port });
  } catch (err) {
    await served.drain(0);
    await store.close();
    throw new StartupError(`cannot listen on admin ${config.admin.listen}: ${(err as Error).message}`);
  }
  const adminInfo = admin.server.address() as AddressInfo;
  const adminAddress = { host: adminInfo.address, port: adminInfo.port };
  rollouts.start(); // resumes stored rollouts and shifts at their step
  releases.start(); // and releases
  fleet?.start();

  let watcher: ConfigWatcher | null = null;
  if (options.watch !== false) {
    watcher = source.watch(() => void reloader.reload('file changed'));
    // "veer is serving" promises that edits are seen: wait for the watcher's first scan (bounded,
    // a slow filesystem must not hold the start), then look once for an edit made before it.
    await Promise.race([watcher.ready, new Promise((resolveReady) => setTimeout(resolveReady, WATCH_READY_TIMEOUT_MS).unref())]);
    void reloader.reload('file changed while the watch started');
  }

  // Before "veer is serving" (readiness): what starting took goes back to the system.
  const startupGcMs = releaseStartupHeap();
  log.info(
    {
      config: configPath,
      listen: `${dataAddress.host}:${dataAddress.port}`,
      ...(tlsAddress !== null && { tls: `${tlsAddress.host}:${tlsAddress.port}` }),
      admin: `${adminAddress.host}:${adminAddress.port}`,
      services: state.table.services.length,
      ...(startupGcMs !== null && { startupGcMs: Math.round(startupGcMs) }),
    },
    'veer is serving',
  );

  let stopping: Promise<{ forced: number }> | null = null;
  return {
    config: () => config,
    dataAddress,
    adminAddress,
    tlsAddress,
    state,
    reloader,
    dataPlane,
    metrics,
    runtime,
    rollouts,
    releases,
    log,
    stop() {
      stopping ??= (async () => {
        await rollouts.stop(); // timers off; a state command in flight finishes first
        await releases.stop();
        await fleet?.stop();
        await store.close(); // etcd: gives up the lease, so another replica leads at once
        await watcher?.close();
        const deadline = parseDuration(config.drainTimeout);
        log.info({ inFlight: served.inFlight, deadlineMs: deadline }, 'draining');
        const [result] = await Promise.all([served.drain(deadline), admin.close()]);
        log.info({ forced: result.forced }, 'stopped');
        return result;
      })();
      return stopping;
    },
  };
}

/** Runs veer until SIGTERM/SIGINT; SIGHUP reloads. Resolves with the exit code. */
export async function runServe(options: StartOptions): Promise<number> {
  const source = new FileConfigSource(options.configPath, options.env ?? process.env);
  const loaded = await readOrThrow(source);
  // workers > 1: this process becomes the cluster primary and the data plane runs in node:cluster workers.
  const workers = resolveWorkerCount(loaded.config.workers);
  const tls = loaded.config.tls === undefined ? null : { listen: parseListenAddress(loaded.config.tls.listen)!, configDir: dirname(source.path) };
  const veer = await startFrom(source, loaded, workers > 1 && options.dataPlane === undefined ? { ...options, dataPlane: serveFromWorkers({ workers, exec: WORKER_ENTRY, tls, configDir: dirname(source.path) }) } : options);
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
