// One stage's veer, as the pipeline talks to it: the admin calls it needs,
// each retried with exponential backoff while the veer cannot be reached
// (or answers 502/503/504), a bounded number of times.

import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, handleWhen, noJitterGenerator, retry, type RetryPolicy } from 'cockatiel';
import type { RolloutStatus, ServiceView } from '../admin/index.ts';
import { AdminCallError, callAdmin, type AdminTarget } from './admin-client.ts';
import type { PlanStage } from './pipeline-plan.ts';

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
  readonly #policy: RetryPolicy;

  /** `onRetry` hears each failed try that will be tried again. */
  constructor(stage: PlanStage, service: string, options: RetryOptions, onRetry: (message: string) => void) {
    this.stage = stage;
    this.#target = stage.token ? { url: stage.admin, token: stage.token } : { url: stage.admin };
    this.#path = `/api/v1/services/${encodeURIComponent(service)}`;
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

  /** The service's rollout, or null when it never had one. */
  async rollout(): Promise<RolloutStatus | null> {
    try {
      return await this.#call<RolloutStatus>('GET', `${this.#path}/rollout`);
    } catch (err) {
      if (err instanceof AdminCallError && err.code === 'no_rollout') return null;
      throw err;
    }
  }

  /** The service: its published weights. */
  service(): Promise<ServiceView> {
    return this.#call<ServiceView>('GET', this.#path);
  }

  /** Starts the service's configured rollout plan with `canary`. */
  start(canary: string): Promise<RolloutStatus> {
    return this.#call<RolloutStatus>('POST', `${this.#path}/rollout`, { canary });
  }

  /** Aborts the running rollout. */
  abort(reason: string): Promise<RolloutStatus> {
    return this.#call<RolloutStatus>('POST', `${this.#path}/rollout/abort`, { reason: reason.slice(0, 500) });
  }

  /** Sets every version's weight in one change. */
  setWeights(weights: Readonly<Record<string, number>>): Promise<{ service: ServiceView }> {
    return this.#call<{ service: ServiceView }>('PUT', `${this.#path}/weights`, { weights });
  }

  /** One version's last `windowMs` of traffic, or null when the veer has none for it. */
  async stats(service: string, version: string, windowMs: number): Promise<VersionStats | null> {
    const span = Math.max(1, Math.min(300_000, Math.round(windowMs)));
    const answer = await this.#call<{ services: Record<string, { versions: Record<string, VersionStats> }> }>('GET', `/api/v1/stats?window=${span}ms`);
    return answer.services[service]?.versions[version] ?? null;
  }
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
