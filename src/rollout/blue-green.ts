// Blue-green rollouts and the rollback window, as pure transitions (like
// transitions.ts: each returns the change to hand to state/).
//
//   start ──> progressing, step 1/1 at 0%: split traffic stays on the old version,
//             the preview rule (header, cookie or query) reaches the new one;
//             the analysis reads the new version's window: the preview traffic
//      │
//      ├── promote, or autoPromote on a passing check ──> promoted   (new 100%, preview closed: one change)
//      └── abort, or failureLimit failed checks     ──> aborted    (old 100%, preview closed: one change)
//
//   promoted ──abort less than rollbackWindow after the promotion──> rolledBack (old 100% again)
//            ──abort later──> refused (rollback_window_passed)
//
// The preview rule travels with the weights (table/compile-rollout.ts), so
// it opens and closes in the same state change as they do, on every worker
// and replica. The old version is never removed: it stays in the running
// config at weight 0, so its pools, DNS and health checks stay open and a
// rollback is one weight change.

import { VeerError } from '../errors.ts';
import { parseDuration, type AnalysisResult, type RolloutRecord, type ServiceChange } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';
import { endRun, enterRunStep, iso } from './run.ts';
import { detailsOf, promoteByPlan, stableWeights } from './transitions.ts';

/** How long after a promotion `abort` still rolls back, when the rollout section does not say (`rollbackWindow`). */
export const DEFAULT_ROLLBACK_WINDOW = '1h';

/** True for a blue-green rollout. */
export function isBlueGreen(rollout: RolloutRecord): boolean {
  return rollout.strategy === 'blueGreen';
}

/** How the preview rule of the running config reads, for reasons and the status. */
export function describePreview(service: CompiledService): string {
  const preview = service.rollout?.preview;
  if (preview === undefined) return 'no preview rule';
  const [kind, spec] = (['header', 'cookie', 'query'] as const).map((k) => [k, preview[k]] as const).find(([, s]) => s !== undefined) ?? ['header', undefined];
  if (spec === undefined) return 'no preview rule';
  const test = spec.value !== undefined ? ` = ${JSON.stringify(spec.value)}` : spec.regex !== undefined ? ` ~ /${spec.regex}/` : spec.present === false ? ' absent' : ' present';
  return `${kind} ${spec.name}${test}`;
}

/** Starts a blue-green rollout: the old versions keep every split request, the preview rule opens toward the canary. */
export function startBlueGreen(service: CompiledService, rollout: RolloutRecord, now: number, why: string): ServiceChange {
  const reason = `blue-green: requests with ${describePreview(service)} reach ${rollout.canary}; everyone else stays on ${Object.keys(rollout.stable).join(', ')} until promote${rollout.autoPromote ? ' (autoPromote: on the first passing check)' : ''}`;
  const next = enterRunStep(rollout, 0, now, false, reason);
  return { rollout: next, weights: stableWeights(service, rollout, 0), preview: rollout.canary, action: 'rollout.start', reason: `${why}; ${reason}`, details: detailsOf(next, null) };
}

/** True when a passing check should switch this rollout now (blue-green with autoPromote, not held by a person). */
export function autoPromotes(rollout: RolloutRecord): boolean {
  return isBlueGreen(rollout) && rollout.autoPromote === true && rollout.phase === 'progressing';
}

/** autoPromote after a passing check: the switch, or (with a confirm-promotion hook) the wait for it. */
export function autoPromote(service: CompiledService, rollout: RolloutRecord, now: number, analysis: AnalysisResult): ServiceChange {
  const why = `autoPromote: the analysis passed (${analysis.canary.requests} preview requests to ${rollout.canary})`;
  return promoteByPlan(service, rollout, rollout, now, why, analysis, 'rollout.pause');
}

/** The running config's rollback window of the service, in ms. */
export function rollbackWindowMs(service: CompiledService): number {
  return parseDuration(service.rollout?.rollbackWindow ?? DEFAULT_ROLLBACK_WINDOW);
}

/** When a promoted rollout can no longer be rolled back (ISO), or null when it is not promoted. */
export function rollbackUntil(service: CompiledService | undefined, rollout: RolloutRecord): string | null {
  if (rollout.phase !== 'promoted' || rollout.endedAt === null || service === undefined) return null;
  return iso(Date.parse(rollout.endedAt) + rollbackWindowMs(service));
}

/**
 * `abort` on a promoted rollout: within the service's rollbackWindow after
 * the promotion, the old stable versions get their weights back (100%) and
 * the rollout ends rolledBack; later it is refused and nothing changes.
 */
export function rollBack(service: CompiledService, rollout: RolloutRecord, now: number, why: string): ServiceChange {
  const windowMs = rollbackWindowMs(service);
  const promotedAt = Date.parse(rollout.endedAt ?? rollout.updatedAt);
  const window = service.rollout?.rollbackWindow ?? DEFAULT_ROLLBACK_WINDOW;
  if (now - promotedAt > windowMs) {
    throw new VeerError(
      'rollback_window_passed',
      `cannot roll back the rollout of ${service.name}: it was promoted at ${iso(promotedAt)}, more than its rollbackWindow (${window}) ago; set the weights instead (PUT /api/v1/services/${service.name}/weights)`,
    );
  }
  const stable = Object.keys(rollout.stable).join(', ');
  const reason = `rolled back: ${why}; ${stable} ${Object.keys(rollout.stable).length === 1 ? 'has' : 'have'} 100% again, ${Math.round((now - promotedAt) / 1000)}s after the promotion of ${rollout.canary} (rollbackWindow ${window})`;
  const next = endRun(rollout, 'rolledBack', now, reason);
  return { rollout: next, weights: stableWeights(service, rollout, 0), action: 'rollout.rollback', reason, details: { ...detailsOf(next, null), promotedAt: iso(promotedAt) } };
}
