// The engine's side of hooks: what each hook receives, the pre-rollout
// calls that may refuse a start, and the event and post-rollout deliveries
// after every transition the leader sees, each recorded as a history line
// (`rollout.hook`). Hooks are read from the running config at each call.

import type { RolloutHookConfig } from '../config/index.ts';
import { VeerError } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import type { AnalysisResult, HistoryEntry, HookCall, RolloutRecord, RuntimeState, ServiceRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import { callHook, describeCall, HookDeliveries, type HookBody, type RetryPolicy } from './hooks.ts';
import { hooksOf } from './plan.ts';

/** History actions that are transitions of a rollout: each one goes to the event hooks. */
const TRANSITIONS = new Set(['rollout.start', 'rollout.step', 'rollout.pause', 'rollout.resume', 'rollout.promote', 'rollout.abort', 'rollout.rollback']);

/** Builds hook bodies, calls the hooks the engine waits for, queues the ones it does not. */
export class RolloutHooks {
  readonly #runtime: RuntimeState;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #deliveries: HookDeliveries;
  #stopped = false;

  constructor(runtime: RuntimeState, log: Logger, now: () => number, retry: Partial<RetryPolicy> | undefined) {
    this.#runtime = runtime;
    this.#log = log;
    this.#now = now;
    this.#deliveries = new HookDeliveries(log, retry, now);
  }

  /** Drops queued deliveries and cancels the ones in flight. */
  stop(): void {
    this.#stopped = true;
    this.#deliveries.stop();
  }

  /** The JSON a hook receives. */
  bodyOf(service: string, rollout: RolloutRecord, weights: Readonly<Record<string, number>>, analysis: AnalysisResult | null, metadata: Record<string, string>, phase: string = rollout.phase): HookBody {
    const step = rollout.steps[rollout.step];
    return {
      service,
      canary: rollout.canary,
      stable: Object.keys(rollout.stable),
      phase,
      step: { index: rollout.step, count: rollout.steps.length, weight: step?.weight ?? 0 },
      weights: { ...weights },
      analysis,
      metadata,
    };
  }

  /** Calls every hook of `type` in the running config at once; resolves with their calls (none: []). */
  callAll(compiled: CompiledService | undefined, type: string, body: () => HookBody): Promise<HookCall[]> {
    return this.call(hooksOf(compiled?.rollout ?? null, type), body);
  }

  /** Calls `hooks` at once with one body (built only when there is a hook); resolves with their calls. */
  call(hooks: readonly RolloutHookConfig[], body: () => HookBody): Promise<HookCall[]> {
    if (hooks.length === 0) return Promise.resolve([]);
    const payload = body();
    return Promise.all(hooks.map((hook) => callHook(hook, payload, this.#now)));
  }

  /** Calls the pre-rollout hooks of `draft` in config order; throws hook_failed at the first that does not answer 2xx. */
  preRollout(service: string, compiled: CompiledService, draft: RolloutRecord): Promise<HookCall[]> {
    const payload = this.bodyOf(service, draft, compiled.split.weights, null, { hook: 'pre-rollout', rollout: draft.id }, 'starting');
    return this.callInOrder(service, hooksOf(compiled.rollout, 'pre-rollout'), payload, `the rollout of ${service}`);
  }

  /** Calls `hooks` one after the other with `payload`; throws hook_failed (`what` did not start) at the first that does not answer 2xx. */
  async callInOrder(service: string, hooks: readonly RolloutHookConfig[], payload: HookBody, what: string): Promise<HookCall[]> {
    const calls: HookCall[] = [];
    for (const hook of hooks) {
      const call = await callHook(hook, payload, this.#now);
      calls.push(call);
      if (!call.ok) {
        this.#log.warn({ service, hook: call.url, status: call.status, error: call.error }, 'pre-rollout hook refused the rollout');
        throw new VeerError('hook_failed', `${describeCall(call)}; ${what} did not start and nothing changed`, { details: { hook: call } });
      }
    }
    return calls;
  }

  /** After a transition (on the leader): queue the event hooks, and after promote or abort the post-rollout hooks. */
  announce(service: string, record: ServiceRecord, entry: HistoryEntry): void {
    const rollout = record.rollout;
    if (this.#stopped || rollout === undefined || !TRANSITIONS.has(entry.action) || !this.#runtime.leadership.isLeader()) return;
    const compiled = this.#runtime.table.servicesByName.get(service);
    if (compiled === undefined) return;
    const ended = entry.action === 'rollout.promote' || entry.action === 'rollout.abort';
    const hooks = [...hooksOf(compiled.rollout, 'event'), ...(ended ? hooksOf(compiled.rollout, 'post-rollout') : [])];
    for (const hook of hooks) {
      const payload = this.bodyOf(service, rollout, entry.after, rollout.lastAnalysis, { hook: hook.type, rollout: rollout.id, action: entry.action, actor: entry.actor, reason: entry.reason, at: entry.at });
      this.#deliveries.send(hook, payload, (call) => void this.#record(service, rollout.id, call));
    }
  }

  /** One history line for a delivered (or given up) event or post-rollout call. */
  async #record(service: string, rolloutId: string, call: HookCall): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#runtime.command(service, 'rollout', () => ({ action: 'rollout.hook', reason: describeCall(call), details: { rollout: rolloutId, hook: call } }));
    } catch (err) {
      this.#log.warn({ err, service, hook: call.url }, 'could not record a hook call in the history');
    }
  }
}
