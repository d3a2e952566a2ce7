// The release state machine as pure functions: like a rollout's
// (transitions.ts), over several member services at once. Each returns ONE
// MultiChange for state/: every member's weights and its copy of the
// release record move together (one save, one etcd transaction, one table).
//
//   start ──> progressing ──(pause elapsed, last check of every member passed)──> next step ... ──> promoted
//                │   ▲        step without pause ──> paused (plan); too little traffic ──> paused (analysis)
//        pause   ▼   │ resume
//              paused
//   progressing | paused ──abort / failureLimit failed checks of any member──> aborted (baselines back)
//
// A member's weights at W%: its canary W, its stable version 100 - W, every
// other version 0. With the canary's range placed last (compile-release.ts)
// that is the same top W% of buckets in every member: one cohort.

import type { ReleaseConfig, RolloutHookConfig } from '../config/index.ts';
import { VeerError } from '../errors.ts';
import { isReleaseActive, isRolloutActive, parseDuration, type AnalysisResult, type MemberChange, type MultiChange, type ReleaseRecord, type ServiceRecord, type ServiceView } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import type { HookBody } from './hooks.ts';
import { FOREVER, resolvePlan, type RolloutPlan } from './plan.ts';
import { continueRun, endRun, enterRunStep, holdRun, isRunning, iso, startRun } from './run.ts';

/** The history line's `service` of a release change. */
export const releaseSubject = (name: string) => `release:${name}`;

/** The verbs of a running release. */
export type ReleaseVerb = 'pause' | 'resume' | 'promote' | 'abort';

/** The release's plan: its steps and analysis (metric checks included) read as a rollout's. */
export function releasePlan(config: ReleaseConfig, first: CompiledService): RolloutPlan {
  const canary = config.services[first.name]!;
  return resolvePlan({ ...first, rollout: { canary, steps: config.steps, ...(config.analysis === undefined ? {} : { analysis: config.analysis }) } } as CompiledService, {});
}

/** The release's hooks of `type` in the running config. */
export function hooksOfRelease(config: ReleaseConfig, type: string): RolloutHookConfig[] {
  return (config.hooks ?? []).filter((h) => h.type === type);
}

/** What a release's hook receives for one member: a rollout hook's body about that member's canary, the release named in `metadata`. */
export function memberBody(
  service: string,
  compiled: CompiledService,
  canary: string,
  stable: readonly string[],
  run: { readonly step: number; readonly steps: readonly { readonly weight: number }[] },
  phase: string,
  analysis: AnalysisResult | null,
  metadata: Record<string, string>,
): HookBody {
  return {
    service,
    canary,
    stable: [...stable],
    phase,
    step: { index: run.step, count: run.steps.length, weight: run.steps[run.step]?.weight ?? 0 },
    weights: { ...compiled.split.weights },
    analysis,
    metadata,
  };
}

/** A member's weights with its canary at `percent`: the stable version takes the rest, every other version 0. */
export function memberWeights(service: CompiledService, canary: string, stable: string, percent: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of service.versions) out[v.name] = v.name === canary ? percent : v.name === stable && percent < 100 ? 100 - percent : 0;
  return out;
}

/** Throws when a member has a running rollout, shift or release: the release cannot start (checked before its pre-rollout hooks too). */
export function refuseRelease(config: ReleaseConfig, recordOf: (service: string) => ServiceRecord): void {
  for (const service of Object.keys(config.services)) {
    const record = recordOf(service);
    if (isRolloutActive(record.rollout)) throw new VeerError('rollout_conflict', `cannot start release ${config.name}: a rollout of ${service} is ${record.rollout!.phase}; abort or promote it first`);
    if (record.shift !== undefined) throw new VeerError('conflict', `cannot start release ${config.name}: a shift of ${service} toward ${record.shift.to} is running; stop it first`);
    if (isReleaseActive(record.release)) throw new VeerError('release_holds_service', `release ${record.release!.name} already holds ${service} (${record.release!.phase})`);
  }
}

/** A new release over `views` (refused while a member has a running rollout, shift or release). */
export function newRelease(config: ReleaseConfig, views: ReadonlyMap<string, ServiceView>, plan: RolloutPlan, now: number): ReleaseRecord {
  refuseRelease(config, (service) => views.get(service)!.record);
  const members: Record<string, ReleaseRecord['members'][string]> = {};
  for (const [service, canary] of Object.entries(config.services)) {
    const view = views.get(service)!;
    const weights = view.service.split.weights;
    // The stable version: the member's highest-weight version other than the canary (config order breaks ties).
    let stable: string | null = null;
    for (const v of view.service.versions) if (v.name !== canary && (weights[v.name] ?? 0) > 0 && (stable === null || weights[v.name]! > weights[stable]!)) stable = v.name;
    if (stable === null) throw new VeerError('invalid_rollout', `cannot start release ${config.name}: ${service} has no version other than ${canary} with traffic to be its stable version`);
    members[service] = { canary, stable, baseline: { ...weights } };
  }
  const run = startRun(plan, now);
  return {
    name: config.name,
    id: `${config.name}@${run.startedAt}`,
    members,
    ...run,
    lastAnalysis: {},
  };
}

/** Every member's change: the record (and weights, when given per member). */
function changeOf(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, weightsOf: ((service: CompiledService, member: ReleaseRecord['members'][string]) => Record<string, number>) | null, action: string, reason: string, details?: object): MultiChange {
  const members: Record<string, MemberChange> = {};
  for (const [service, member] of Object.entries(release.members)) {
    const view = views.get(service)!;
    members[service] = weightsOf === null ? { release } : { release, weights: weightsOf(view.service, member) };
  }
  const canaries = Object.fromEntries(Object.entries(release.members).map(([s, m]) => [s, { canary: m.canary, stable: m.stable, labels: views.get(s)!.service.versionsByName.get(m.canary)?.labels ?? {} }]));
  return { subject: releaseSubject(release.name), members, action, reason, details: { release: release.id, phase: release.phase, step: release.step, members: canaries, ...details } };
}

/** Enters step `index`: every member's canary at the step's weight. */
export function enterReleaseStep(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, index: number, now: number, action: string, reason: string, analysis: Readonly<Record<string, AnalysisResult>> | null = null): MultiChange {
  const step = release.steps[index]!;
  const last = index === release.steps.length - 1;
  // As a rollout's: no pause (short of the last step) or `pause: forever` (anywhere) waits for resume.
  const holds = step.pause === FOREVER || (step.pause === undefined && !last);
  const next = enterRunStep(release, index, now, holds, reason, { lastAnalysis: { ...(analysis ?? release.lastAnalysis) } });
  return changeOf(next, views, (service, m) => memberWeights(service, m.canary, m.stable, step.weight), action, reason, { weight: step.weight });
}

/** Every member's canary takes all traffic. */
export function promoteRelease(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, now: number, reason: string, analysis: Readonly<Record<string, AnalysisResult>> | null = null): MultiChange {
  const next = endRun(release, 'promoted', now, reason, { lastAnalysis: { ...(analysis ?? release.lastAnalysis) } });
  return changeOf(next, views, (service, m) => memberWeights(service, m.canary, m.stable, 100), 'release.promote', reason);
}

/** Every member goes back to its weights before the release, at once. */
export function abortRelease(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, now: number, reason: string, analysis: Readonly<Record<string, AnalysisResult>> | null): MultiChange {
  const next = endRun(release, 'aborted', now, reason, { lastAnalysis: { ...(analysis ?? release.lastAnalysis) } });
  return changeOf(next, views, (_service, m) => ({ ...m.baseline }), 'release.abort', reason, analysis === null ? {} : { analysis });
}

/** Pauses (operator or analysis): weights stay. */
export function pauseRelease(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, now: number, by: 'operator' | 'analysis', reason: string): MultiChange {
  const next = holdRun(release, now, by, reason);
  return changeOf(next, views, null, 'release.pause', reason);
}

/** How long after a promotion `abort` still rolls a release back, when it does not say (`rollbackWindow`), as a rollout's. */
export const DEFAULT_RELEASE_ROLLBACK_WINDOW = '1h';

/** When a promoted release can no longer be rolled back (ISO), or null when it is not promoted. */
export function releaseRollbackUntil(release: ReleaseRecord | undefined, window: string | undefined): string | null {
  if (release?.phase !== 'promoted' || release.endedAt === null) return null;
  return iso(Date.parse(release.endedAt) + parseDuration(window ?? DEFAULT_RELEASE_ROLLBACK_WINDOW));
}

/**
 * `abort` on a promoted release: within its rollbackWindow every member gets
 * its weights from before the release back at once, and the release ends
 * rolledBack. Refused, changing nothing, after the window or when a member
 * has moved on since (a rollout, a shift or another release there now).
 */
export function rollBackRelease(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, now: number, why: string, window: string | undefined): MultiChange {
  const windowText = window ?? DEFAULT_RELEASE_ROLLBACK_WINDOW;
  const promotedAt = Date.parse(release.endedAt ?? release.updatedAt);
  if (now - promotedAt > parseDuration(windowText)) {
    throw new VeerError(
      'rollback_window_passed',
      `cannot roll back release ${release.name}: it was promoted at ${iso(promotedAt)}, more than its rollbackWindow (${windowText}) ago; set each member's weights instead`,
    );
  }
  for (const service of Object.keys(release.members)) {
    const record = views.get(service)!.record;
    if (isRolloutActive(record.rollout)) throw new VeerError('rollout_conflict', `cannot roll back release ${release.name}: a rollout of ${service} is ${record.rollout!.phase} since; abort or promote it first`);
    if (record.shift !== undefined) throw new VeerError('conflict', `cannot roll back release ${release.name}: a shift of ${service} toward ${record.shift.to} is running; stop it first`);
    if (record.release?.id !== release.id) throw new VeerError('conflict', `cannot roll back release ${release.name}: ${service} has been in release ${record.release?.name ?? '?'} since; set its weights instead`);
  }
  const reason = `rolled back: ${why}; every member has its weights from before the release again, ${Math.round((now - promotedAt) / 1000)}s after the promotion (rollbackWindow ${windowText})`;
  const next = endRun(release, 'rolledBack', now, reason);
  return changeOf(next, views, (_service, m) => ({ ...m.baseline }), 'release.rollback', reason, { promotedAt: iso(promotedAt) });
}

/** Resumes a paused release: a plan pause goes on to the next step (or promotes after the last), another pause continues the current one afresh. */
export function resumeRelease(release: ReleaseRecord, views: ReadonlyMap<string, ServiceView>, now: number, reason: string): MultiChange {
  if (release.pausedBy === 'plan') {
    // Held at the last step (`pause: forever`): resuming finishes the plan, which promotes.
    if (release.step === release.steps.length - 1) return promoteRelease(release, views, now, reason);
    return enterReleaseStep(release, views, release.step + 1, now, 'release.resume', reason);
  }
  const next = continueRun(release, now, reason);
  return changeOf(next, views, null, 'release.resume', reason);
}

/** The release record held by the members, when it is `name`'s (the first member's copy: all are written together). */
export function storedRelease(name: string, views: ReadonlyMap<string, ServiceView>): ReleaseRecord | undefined {
  let newest: ReleaseRecord | undefined;
  for (const view of views.values()) {
    const r = view.record.release;
    if (r !== undefined && r.name === name && (newest === undefined || r.updatedAt > newest.updatedAt)) newest = r;
  }
  return newest;
}

/** Throws unless the release runs in one of `phases`. */
export function requireRelease(name: string, release: ReleaseRecord | undefined, verb: ReleaseVerb, phases: readonly ReleaseRecord['phase'][]): ReleaseRecord {
  if (release === undefined || !isRunning(release)) throw new VeerError('no_release', `release ${name} is not running; nothing to ${verb}`);
  if (!phases.includes(release.phase)) throw new VeerError('conflict', `cannot ${verb} release ${name}: it is ${release.phase}`);
  return release;
}
