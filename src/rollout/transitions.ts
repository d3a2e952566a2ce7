// The rollout state machine as pure functions: each takes the stored
// rollout and returns the change to hand to state/ (weights, record,
// history line). No timers, no I/O.
//
//   start ──> progressing ──(pause elapsed, last check passed)──> next step ...
//                │   ▲                                 step without pause ──> paused (plan)
//     pause /    │   │ resume                          too little traffic  ──> paused (analysis)
//                ▼   │
//              paused
//   progressing | paused ──promote / last step at 100%──> promoted   (canary 100%)
//   progressing | paused ──abort / failureLimit failed checks──> aborted (stable 100%)
//   promoted ──abort within rollbackWindow──> rolledBack (stable 100%)      (blue-green.ts)
//
// A blue-green rollout (blue-green.ts) is one step at 0% with its preview
// rule open; promote and abort are the same transitions (both close it).
//
// With a confirm-promotion hook in the config, a promotion the plan makes
// (not the promote verb) first holds: paused (confirm-promotion) at the
// current step, until the engine hears 2xx from every such hook.

import { VeerError } from '../errors.ts';
import { isRolloutActive, splitAround, type AnalysisResult, type RolloutRecord, type ServiceChange } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import { FOREVER, hooksOf, type RolloutPlan } from './plan.ts';
import { continueRun, endRun, enterRunStep, holdRun, startRun } from './run.ts';

/** Every version's weight with the canary at `canaryPercent` and the stable versions sharing the rest as at the start. */
export function stableWeights(service: CompiledService, rollout: RolloutRecord, canaryPercent: number) {
  return splitAround(
    service.versions.map((v) => v.name),
    rollout.canary,
    canaryPercent,
    rollout.stable,
  );
}

/** A new rollout record for `plan`, taking the service's current weights as the baseline. */
export function newRollout(service: CompiledService, plan: RolloutPlan, now: number): RolloutRecord {
  const baseline = { ...service.split.weights };
  const stable: Record<string, number> = {};
  for (const [name, w] of Object.entries(baseline)) if (name !== plan.canary) stable[name] = w;
  const run = startRun(plan, now);
  return {
    id: `${service.name}@${run.startedAt}`,
    ...(plan.strategy === 'blueGreen' ? { strategy: 'blueGreen' as const, autoPromote: plan.autoPromote === true } : {}),
    canary: plan.canary,
    stable,
    baseline,
    ...run,
    lastAnalysis: null,
  };
}

/** True when the running config has a confirm-promotion hook: the plan's promotions wait for it. */
export function isGated(service: CompiledService): boolean {
  return hooksOf(service.rollout, 'confirm-promotion').length > 0;
}

/** The plan (or a blue-green autoPromote) promotes: at once, or (gated) it holds where it is until the confirm-promotion hooks say yes. */
export function promoteByPlan(service: CompiledService, rollout: RolloutRecord, promoteFrom: RolloutRecord, now: number, why: string, analysis: AnalysisResult | null, holdAction: string): ServiceChange {
  if (!isGated(service)) return promote(service, promoteFrom, now, why, analysis);
  const reason = `waiting for confirm-promotion: ${why}; ${rollout.canary} gets 100% once every confirm-promotion hook answers 2xx (asked every interval), or on promote`;
  const next = holdRun(rollout, now, 'confirm-promotion', reason, { lastAnalysis: analysis ?? rollout.lastAnalysis });
  return { rollout: next, action: holdAction, reason, details: detailsOf(next, analysis) };
}

/** Enters step `index`: sets the canary's weight; a step without pause (or `pause: forever`) waits for resume; a last step at 100% without pause promotes. */
export function enterStep(service: CompiledService, rollout: RolloutRecord, index: number, now: number, action: string, why: string, analysis: AnalysisResult | null): ServiceChange {
  const step = rollout.steps[index]!;
  const n = rollout.steps.length;
  if (index === n - 1 && step.weight >= 100 && step.pause === undefined) {
    return promoteByPlan(service, rollout, { ...rollout, step: index }, now, `${why}; the last step gives ${rollout.canary} 100%`, analysis, action === 'rollout.start' ? action : 'rollout.pause');
  }
  const label = `step ${index + 1}/${n}: ${rollout.canary} at ${step.weight}%`;
  const held = step.pause === undefined || step.pause === FOREVER;
  const reason = held ? `${label}; ${step.pause === FOREVER ? 'pause: forever' : 'the step has no pause'}: waiting for resume` : `${label} for ${step.pause}`;
  const next = enterRunStep(rollout, index, now, held, reason, { lastAnalysis: analysis ?? rollout.lastAnalysis });
  return { rollout: next, weights: stableWeights(service, rollout, step.weight), action, reason: `${why}; ${next.reason}`, details: detailsOf(next, analysis, service) };
}

/** Past the current step: the next step, or the end of the plan. */
export function advance(service: CompiledService, rollout: RolloutRecord, now: number, why: string, analysis: AnalysisResult | null): ServiceChange {
  const next = rollout.step + 1;
  if (next < rollout.steps.length) return enterStep(service, rollout, next, now, 'rollout.step', why, analysis);
  const last = rollout.steps[rollout.step]!;
  if (last.weight >= 100) return promoteByPlan(service, rollout, rollout, now, `${why}; the plan is done`, analysis, 'rollout.pause');
  const reason = `the plan's last step is done with ${rollout.canary} at ${last.weight}%: promote, abort, or resume (which promotes)`;
  return {
    rollout: holdRun(rollout, now, 'plan', reason, { lastAnalysis: analysis ?? rollout.lastAnalysis }),
    action: 'rollout.pause',
    reason: `${why}; ${reason}`,
    details: detailsOf(rollout, analysis),
  };
}

/** Gives the canary 100% and ends the rollout. */
export function promote(service: CompiledService, rollout: RolloutRecord, now: number, why: string, analysis: AnalysisResult | null): ServiceChange {
  const next = endRun(rollout, 'promoted', now, `promoted: ${why}`, { lastAnalysis: analysis ?? rollout.lastAnalysis });
  return { rollout: next, weights: stableWeights(service, rollout, 100), action: 'rollout.promote', reason: next.reason, details: detailsOf(next, analysis, service) };
}

/** Puts 100% back on the stable versions at once and ends the rollout. */
export function abort(service: CompiledService, rollout: RolloutRecord, now: number, why: string, analysis: AnalysisResult | null): ServiceChange {
  const next = endRun(rollout, 'aborted', now, `aborted: ${why}`, { lastAnalysis: analysis ?? rollout.lastAnalysis });
  return { rollout: next, weights: stableWeights(service, rollout, 0), action: 'rollout.abort', reason: next.reason, details: detailsOf(next, analysis, service) };
}

/** Holds a progressing rollout (weights stay; analysis keeps running and may still abort). */
export function pause(rollout: RolloutRecord, now: number, by: 'operator' | 'analysis', why: string, analysis: AnalysisResult | null): ServiceChange {
  const next = holdRun(rollout, now, by, `paused: ${why}`, { lastAnalysis: analysis ?? rollout.lastAnalysis });
  return { rollout: next, action: 'rollout.pause', reason: next.reason, details: detailsOf(next, analysis) };
}

/** Resumes a paused rollout: past a step without pause (or the plan's end) it moves on; otherwise the current step starts its pause over. */
export function resume(service: CompiledService, rollout: RolloutRecord, now: number, why: string, analysis: AnalysisResult | null): ServiceChange {
  if (rollout.pausedBy === 'confirm-promotion') {
    throw new VeerError('rollout_conflict', `cannot resume the rollout of ${service.name}: it waits for its confirm-promotion hook; promote overrides it, abort ends it`);
  }
  if (rollout.pausedBy === 'plan') {
    // Held after the plan's last step (below 100%, or pause: forever): resuming finishes the plan, which promotes.
    if (rollout.step + 1 >= rollout.steps.length) return promoteByPlan(service, rollout, rollout, now, `${why}; resumed after the plan's last step`, analysis, 'rollout.pause');
    return advance(service, rollout, now, why, analysis);
  }
  const step = rollout.steps[rollout.step]!;
  const next = continueRun(rollout, now, `resumed: ${why}; step ${rollout.step + 1}/${rollout.steps.length} (${step.weight}%) starts its pause over`);
  return { rollout: next, action: 'rollout.resume', reason: next.reason, details: detailsOf(next, analysis) };
}

/** The rollout a verb acts on, or the error that refuses the verb. */
export function requireRollout(serviceName: string, rollout: RolloutRecord | undefined, verb: string, phases: readonly string[]): RolloutRecord {
  if (rollout === undefined) throw new VeerError('no_rollout', `service ${serviceName} has no rollout`);
  if (!phases.includes(rollout.phase)) {
    const hint = isRolloutActive(rollout) ? '' : '; start a new one with POST .../rollout';
    throw new VeerError('rollout_conflict', `cannot ${verb} the rollout of ${serviceName}: it is ${rollout.phase}${hint}`);
  }
  return rollout;
}

/** The history line's details; with the service, the canary's labels (commit, image) too, so the history says which build moved. */
export function detailsOf(rollout: RolloutRecord, analysis: AnalysisResult | null, service?: CompiledService) {
  const labels = service?.versionsByName.get(rollout.canary)?.labels;
  return { rollout: rollout.id, phase: rollout.phase, step: rollout.step, ...(labels !== undefined && Object.keys(labels).length > 0 ? { labels } : {}), ...(analysis ? { analysis } : {}) };
}
