// Rollout hooks (Flagger's webhooks): a POST with a JSON body about the
// rollout to a URL from the config, at fixed points of the rollout.
//
//   pre-rollout        before start; not 2xx: the rollout does not start
//   rollout            before each check; not 2xx: that check fails
//   confirm-promotion  before the plan promotes; not 2xx: it waits (asked again each interval)
//   post-rollout       after promoted or aborted        ┐ queued, retried with backoff,
//   event              after every transition           ┘ never awaited by the engine
//
// A call never throws: its outcome is a HookCall (status, duration, error).
// The URL is recorded without its query string and credentials, and header
// values never leave the running config.

import type { RolloutHookConfig } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import { parseDuration, type AnalysisResult, type HookCall } from '../state/index.ts';
import { loadUndici } from './http-client.ts';

/** A hook call's timeout when the config gives none. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** A pre-rollout hook may run a smoke test: a longer default. */
export const DEFAULT_PRE_ROLLOUT_TIMEOUT_MS = 60_000;

/** The JSON every hook receives. */
export interface HookBody {
  readonly service: string;
  readonly canary: string;
  readonly stable: readonly string[];
  readonly phase: string;
  /** The current step: its index from 0 (as GET .../rollout), how many there are, and the canary's weight there. */
  readonly step: { readonly index: number; readonly count: number; readonly weight: number };
  readonly weights: Readonly<Record<string, number>>;
  readonly analysis: AnalysisResult | null;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The URL as recorded: scheme, host and path, without credentials or query string (where tokens tend to live). */
export function recordedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** The hook's timeout in ms. */
export function hookTimeoutMs(hook: RolloutHookConfig): number {
  if (hook.timeout !== undefined) return parseDuration(hook.timeout);
  return hook.type === 'pre-rollout' ? DEFAULT_PRE_ROLLOUT_TIMEOUT_MS : DEFAULT_HOOK_TIMEOUT_MS;
}

/** One POST to the hook; resolves with its outcome, never rejects. */
export async function callHook(hook: RolloutHookConfig, body: HookBody, now: () => number = Date.now, cancel?: AbortSignal): Promise<HookCall> {
  const timeoutMs = hookTimeoutMs(hook);
  const started = performance.now();
  const base = { type: hook.type, url: recordedUrl(hook.url), at: new Date(now()).toISOString() };
  const took = () => Math.round((performance.now() - started) * 10) / 10;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = cancel === undefined ? timeout : AbortSignal.any([timeout, cancel]);
  try {
    const { request } = await loadUndici();
    const res = await request(hook.url, {
      method: 'POST',
      headers: { ...hook.headers, 'content-type': 'application/json', 'user-agent': 'veer-rollout-hook' },
      body: JSON.stringify(body),
      signal,
    });
    const text = await res.body.text();
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    const call: HookCall = { ...base, status: res.statusCode, ok, durationMs: took() };
    return ok ? call : { ...call, error: `answered ${res.statusCode}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const error = timeout.aborted ? `no answer within ${timeoutMs}ms` : cancel?.aborted ? 'cancelled: veer is stopping' : `unreachable: ${e.code ?? e.message}`;
    return { ...base, status: null, ok: false, durationMs: took(), error };
  }
}

/** A hook call in words, for reasons and errors. */
export function describeCall(call: HookCall): string {
  const ms = Math.round(call.durationMs);
  const body = !call.ok && call.status !== null && call.error?.includes(': ') ? `: ${call.error.slice(call.error.indexOf(': ') + 2)}` : '';
  const outcome = call.status !== null ? `answered ${call.status} in ${ms}ms${body}` : call.error?.startsWith('no answer') ? call.error : `${call.error ?? 'failed'} after ${ms}ms`;
  return `${call.type} hook ${call.url} ${outcome}`;
}

/** How event and post-rollout deliveries retry. */
export interface RetryPolicy {
  /** Calls per delivery, the first included (default 5). */
  readonly attempts: number;
  /** Wait before the first retry; doubles each time (default 1 s, capped at 30 s). */
  readonly baseDelayMs: number;
}

/** Deliveries queued per hook URL beyond which the oldest are dropped (a hook down for hours must not grow memory). */
export const MAX_QUEUED_DELIVERIES = 100;

const MAX_RETRY_DELAY_MS = 30_000;

interface Delivery {
  readonly hook: RolloutHookConfig;
  readonly body: HookBody;
  readonly done: (call: HookCall) => void;
}

/**
 * Delivers event and post-rollout calls in the background: one queue per
 * hook URL (in order), each call retried with backoff until it answers 2xx
 * or its attempts run out. `send` never waits for a call.
 *
 *   send ──> queue[url] ──> call ──2xx──> done(call)
 *                            └── fail ──wait 1s, 2s, 4s...──> call ... ──> done(last call, attempts)
 */
export class HookDeliveries {
  readonly #queues = new Map<string, Delivery[]>();
  readonly #retry: RetryPolicy;
  readonly #log: Logger;
  readonly #now: () => number;
  #stopped = false;
  /** Aborts the calls in flight when stopping. */
  readonly #cancel = new AbortController();
  /** Timers of waiting retries, so stop() ends them. */
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  constructor(log: Logger, retry: Partial<RetryPolicy> = {}, now: () => number = Date.now) {
    this.#log = log;
    this.#retry = { attempts: retry.attempts ?? 5, baseDelayMs: retry.baseDelayMs ?? 1000 };
    this.#now = now;
  }

  /** Queues one delivery; `done` gets its final outcome. */
  send(hook: RolloutHookConfig, body: HookBody, done: (call: HookCall) => void): void {
    if (this.#stopped) return;
    const key = `${hook.type} ${hook.url}`;
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(key, queue);
      queue.push({ hook, body, done });
      void this.#drain(key, queue);
      return;
    }
    queue.push({ hook, body, done });
    if (queue.length > MAX_QUEUED_DELIVERIES) {
      // The one in flight stays at [0]; the oldest waiting one goes.
      const [dropped] = queue.splice(1, 1);
      this.#log.warn({ hook: recordedUrl(hook.url), type: hook.type, phase: dropped?.body.phase }, `hook delivery dropped: more than ${MAX_QUEUED_DELIVERIES} waiting for this URL`);
    }
  }

  /** Ends retries, drops what waits and cancels the calls in flight. */
  stop(): void {
    this.#stopped = true;
    this.#cancel.abort();
    for (const queue of this.#queues.values()) queue.splice(1);
    for (const sleep of this.#sleeps) {
      clearTimeout(sleep.timer);
      sleep.wake();
    }
    this.#sleeps.clear();
  }

  async #drain(key: string, queue: Delivery[]): Promise<void> {
    while (queue.length > 0) {
      const delivery = queue[0]!;
      let call: HookCall | null = null;
      let attempt = 0;
      while (attempt < this.#retry.attempts) {
        attempt++;
        call = await callHook(delivery.hook, delivery.body, this.#now, this.#cancel.signal);
        if (call.ok || this.#stopped || attempt >= this.#retry.attempts) break;
        await this.#sleep(Math.min(MAX_RETRY_DELAY_MS, this.#retry.baseDelayMs * 2 ** (attempt - 1)));
        if (this.#stopped) break;
      }
      const final: HookCall = attempt > 1 ? { ...call!, attempts: attempt } : call!;
      queue.shift();
      if (this.#stopped) continue;
      if (!final.ok) this.#log.warn({ hook: final.url, type: final.type, attempts: attempt, error: final.error }, 'hook delivery failed');
      try {
        delivery.done(final);
      } catch (err) {
        this.#log.error({ err }, 'recording a hook call failed');
      }
    }
    this.#queues.delete(key);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.#sleeps.delete(sleep);
          resolve();
        }, ms),
        wake: resolve,
      };
      sleep.timer.unref();
      this.#sleeps.add(sleep);
    });
  }
}
