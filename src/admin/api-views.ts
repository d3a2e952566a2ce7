// What the admin API answers about a service: the published split plus the
// stored rollout and shift, as plain JSON.

import type { RolloutStatus } from '../rollout/index.ts';
import type { ReplicaView, RuntimeState, ShiftRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';

/** One version as the API shows it. */
export interface VersionView {
  readonly name: string;
  readonly weight: number;
  readonly percent: number;
  readonly upstreams: readonly string[];
  /** The version's labels from the config (commit, image...). */
  readonly labels: Readonly<Record<string, string>>;
}

/** One upstream endpoint of a version and whether it takes traffic ([Safety nets]). */
export interface EndpointView {
  readonly version: string;
  /** `host:port`: an address the version's upstream resolved to. */
  readonly endpoint: string;
  /** False while ejected or failing its health checks. */
  readonly up: boolean;
}

/** The endpoints of a service's versions that have sent traffic (where the pools exist), and their state. */
export type EndpointsOf = (service: string) => Promise<readonly EndpointView[]>;

/** One service as the API shows it. */
export interface ServiceView {
  readonly name: string;
  readonly hosts: readonly string[] | null;
  readonly pathPrefix: string;
  readonly versions: readonly VersionView[];
  readonly weights: Readonly<Record<string, number>>;
  /** `runtime` when weights set through the API (or a rollout) win over the config's. */
  readonly weightsSource: 'config' | 'runtime';
  readonly sticky: { readonly kind: string; readonly name: string } | null;
  readonly seed: string;
  readonly rules: number;
  readonly rolloutPlan: boolean;
  readonly rollout: RolloutStatus | null;
  readonly shift: ShiftRecord | null;
  /** With a shared store (etcd): which revision of this service each live replica has applied, and whether all have. */
  readonly replicas?: ReplicaView;
}

/** Reads the live status of a service's rollout (the engine adds its analysis to the stored record). */
export type RolloutStatusOf = (service: string) => RolloutStatus | null;

/** Builds the view of one service. */
export function describeService(service: CompiledService, runtime: RuntimeState, rolloutOf: RolloutStatusOf): ServiceView {
  const split = service.split;
  const record = runtime.record(service.name);
  return {
    name: service.name,
    hosts: service.hosts,
    pathPrefix: service.pathPrefix,
    versions: split.versions.map((v, i) => ({ name: v.name, weight: split.weights[v.name] ?? 0, percent: split.percents[i] ?? 0, upstreams: v.upstream.origins, labels: v.labels })),
    weights: split.weights,
    weightsSource: split.source,
    sticky: split.sticky ? { kind: split.sticky.kind, name: split.sticky.name } : null,
    seed: split.seed,
    rules: service.rules.length,
    rolloutPlan: service.rollout !== null,
    rollout: rolloutOf(service.name),
    shift: record.shift ?? null,
    ...replicasOf(service.name, runtime),
  };
}

/** `{ replicas }` with a shared store; nothing with the file store. */
function replicasOf(service: string, runtime: RuntimeState): { replicas?: ReplicaView } {
  const replicas = runtime.replicas(service);
  return replicas === null ? {} : { replicas };
}
