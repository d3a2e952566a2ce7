// One stage's veer, as the pipeline talks to it: the admin calls it needs,
// each retried with exponential backoff while the veer cannot be reached
// (or answers 502/503/504), a bounded number of times.

import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, handleWhen, noJitterGenerator, retry, type RetryPolicy } from 'cockatiel';
import type { ReleaseStatus, RolloutStatus, ServiceView } from '../admin/index.ts';
import { AdminCallError, callAdmin, type AdminTarget } from './admin-client.ts';
import { RELEASE_PREFIX, type PlanStage } from './pipeline-plan.ts';

/** How hard to try a veer that does not answer. */
export interface RetryOptions {
  /** Tries in all (the first included). */
  readonly tries: number;
  /** The first wait; each next one doubles. */
  readonly delayMs: number;
}

/** 5 tries, waiting 2 s, 4 s, 8 s, 16 s between them: about 30 s. */
export const DEFAULT_RETRY: RetryOptions = { tries: 5, delayMs: 2000 };

/** A veer's window of one version's traffic (GET /api/v1/stats). */
export interface VersionStats {
  readonly requests: number;
  readonly errors: number;
  readonly errorRatio: number;
  readonly p99Ms: number | null;
}

/** True for a failure worth trying again: no answer, or a proxy or store in front of the API that is down for now. */
export function isTransient(err: unknown): boolean {
  return err instanceof AdminCallError && (err.code === 'unreachable' || err.status === 502 || err.status === 503 || err.status === 504);
}

/** The admin calls of one stage. */
export class StageClient {
  readonly stage: PlanStage;
  readonly #target: AdminTarget;
  readonly #path: string;
  /** The release a release plan carries (its stages then drive POST /api/v1/releases/NAME/...), else null. */
  readonly #release: string | null;
  readonly #policy: RetryPolicy;

  /** `onRetry` hears each failed try that will be tried again. */
  constructor(stage: PlanStage, service: string, options: RetryOptions, onRetry: (message: string) => void) {
    this.stage = stage;
    this.#target = stage.token ? { url: stage.admin, token: stage.token } : { url: stage.admin };
    this.#release = service.startsWith(RELEASE_PREFIX) ? service.slice(RELEASE_PREFIX.length) : null;
    this.#path = this.#release === null ? `/api/v1/services/${encodeURIComponent(service)}` : `/api/v1/releases/${encodeURIComponent(this.#release)}`;
    this.#policy = retry(handleWhen(isTransient), {
      maxAttempts: Math.max(0, options.tries - 1),
      backoff: new ExponentialBackoff({ generator: noJitterGenerator, initialDelay: options.delayMs, maxDelay: options.delayMs * 16 }),
    });
    let attempt = 1;
    this.#policy.onRetry((e) => {
      attempt = e.attempt + 1;
      const why = 'error' in e ? (e.error as Error).message : 'failed';
      onRetry(`${why}; try ${attempt}/${options.tries} in ${Math.round(e.delay)}ms`);
    });
  }

  /** Runs `fn` (idempotent: it may run again) under the retry policy; stops waiting when `signal` aborts. */
  retrying<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#policy.execute(() => fn(), signal);
  }

  /** One admin call; "cannot reach" names the stage, without the CLI's hint about --admin. */
  async #call<T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<T> {
    try {
      return await callAdmin<T>(this.#target, method, path, body);
    } catch (err) {
      if (!(err instanceof AdminCallError) || err.code !== 'unreachable') throw err;
      const why = /\(([^)]*)\)/.exec(err.message)?.[1] ?? 'no answer';
      throw new AdminCallError('unreachable', `cannot reach the admin API of ${this.stage.name} at ${this.stage.admin} (${why})`, null);
    }
  }

  /** The service's rollout, or null when it never had one (a release plan: the release, seen as a rollout). */
  async rollout(): Promise<RolloutStatus | null> {
    if (this.#release !== null) {
      const r = await this.#call<ReleaseStatus>('GET', this.#path);
      return r.phase === 'idle' ? null : releaseAsRollout(r);
    }
    try {
      return await this.#call<RolloutStatus>('GET', `${this.#path}/rollout`);
    } catch (err) {
      if (err instanceof AdminCallError && err.code === 'no_rollout') return null;
      throw err;
    }
  }

  /** The service: its published weights (a release plan: every member's, keyed `service/version`). */
  async service(): Promise<ServiceView> {
    if (this.#release === null) return this.#call<ServiceView>('GET', this.#path);
    const r = await this.#call<ReleaseStatus>('GET', this.#path);
    return { weights: memberWeights(r) } as unknown as ServiceView;
  }

  /** Starts the service's configured rollout plan with `canary` (a release plan: starts the release). */
  async start(canary: string): Promise<RolloutStatus> {
    if (this.#release !== null) return releaseAsRollout(await this.#call<ReleaseStatus>('POST', `${this.#path}/start`, {}));
    return this.#call<RolloutStatus>('POST', `${this.#path}/rollout`, { canary });
  }

  /** Aborts the running rollout (or release). */
  async abort(reason: string): Promise<RolloutStatus> {
    if (this.#release !== null) return releaseAsRollout(await this.#call<ReleaseStatus>('POST', `${this.#path}/abort`, { reason: reason.slice(0, 500) }));
    return this.#call<RolloutStatus>('POST', `${this.#path}/rollout/abort`, { reason: reason.slice(0, 500) });
  }

  /** Sets every version's weight in one change (a release plan: each member's, from `service/version` keys, one member at a time). */
  async setWeights(weights: Readonly<Record<string, number>>): Promise<{ service: ServiceView }> {
    if (this.#release === null) return this.#call<{ service: ServiceView }>('PUT', `${this.#path}/weights`, { weights });
    const byService = new Map<string, Record<string, number>>();
    for (const [key, w] of Object.entries(weights)) {
      const slash = key.indexOf('/');
      const service = key.slice(0, slash);
      byService.set(service, { ...byService.get(service), [key.slice(slash + 1)]: w });
    }
    for (const [service, own] of byService) await this.#call('PUT', `/api/v1/services/${encodeURIComponent(service)}/weights`, { weights: own });
    return { service: { weights } as unknown as ServiceView };
  }

  /** One version's last `windowMs` of traffic, or null when the veer has none for it. */
  async stats(service: string, version: string, windowMs: number): Promise<VersionStats | null> {
    const span = Math.max(1, Math.min(300_000, Math.round(windowMs)));
    const answer = await this.#call<{ services: Record<string, { versions: Record<string, VersionStats> }> }>('GET', `/api/v1/stats?window=${span}ms`);
    return answer.services[service]?.versions[version] ?? null;
  }
}

/** Every member's weights, keyed `service/version`. */
function memberWeights(r: ReleaseStatus): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [service, m] of Object.entries(r.members)) for (const [v, w] of Object.entries(m.weights)) out[`${service}/${v}`] = w;
  return out;
}

/**
 * A release as the stages follow a rollout: its phase, step and reason; its
 * `canary` is the release's name, at the smallest share any member's canary
 * has (100 only when every member is promoted). The release's own analysis
 * is the release engine's; a soak does not check numbers again (analysis null).
 */
export function releaseAsRollout(r: ReleaseStatus): RolloutStatus {
  let share = 100;
  for (const m of Object.values(r.members)) {
    const total = Object.values(m.weights).reduce((a, b) => a + b, 0);
    share = Math.min(share, total > 0 ? ((m.weights[m.canary] ?? 0) / total) * 100 : 0);
  }
  const failing = Object.entries(r.members).find(([, m]) => m.lastAnalysis?.verdict === 'fail');
  const last = failing?.[1].lastAnalysis ?? Object.values(r.members).find((m) => m.lastAnalysis !== null)?.lastAnalysis ?? null;
  return {
    id: r.id ?? '',
    service: `${RELEASE_PREFIX}${r.name}`,
    canary: r.name,
    phase: r.phase === 'idle' ? 'aborted' : r.phase,
    pausedBy: r.pausedBy,
    step: r.step ?? 0,
    stepCount: r.stepCount,
    canaryWeight: r.canaryWeight,
    reason: r.reason ?? '',
    lastAnalysis: last,
    analysis: null,
    weights: { [r.name]: share, others: 100 - share },
  } as unknown as RolloutStatus;
}

/** Waits `ms`, or less when `signal` aborts (then it resolves false). */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
