// Checks and arithmetic for runtime weights. A weight map is checked whole
// before anything is persisted or published: every key a version of the
// service, every value a finite number in [0, 1e9], at least one above 0.

import { VeerError } from '../errors.ts';
import type { CompiledService } from '../table/index.ts';
import type { WeightMap } from './records.ts';

/** The largest weight accepted (as in the config file). */
export const MAX_WEIGHT = 1e9;

/** Throws unknown_version or invalid_weights unless `weights` fits `service`; returns a full map (0 for omitted versions). */
export function checkWeights(service: CompiledService, weights: Readonly<Record<string, unknown>>): WeightMap {
  const names = Object.keys(weights);
  const unknown = names.filter((n) => !service.versionsByName.has(n));
  if (unknown.length > 0) {
    throw new VeerError(
      'unknown_version',
      `${unknown.map((n) => JSON.stringify(n)).join(', ')} ${unknown.length === 1 ? 'is not a version' : 'are not versions'} of service ${service.name} (versions: ${service.versions.map((v) => v.name).join(', ')})`,
    );
  }
  if (names.length === 0) throw new VeerError('invalid_weights', 'weights must name at least one version');
  for (const name of names) {
    const w = weights[name];
    if (typeof w !== 'number' || !Number.isFinite(w)) throw new VeerError('invalid_weights', `weight of ${name} must be a finite number, got ${typeof w === 'number' ? String(w) : JSON.stringify(w)}`);
    if (w < 0) throw new VeerError('invalid_weights', `weight of ${name} must not be negative, got ${w}`);
    if (w > MAX_WEIGHT) throw new VeerError('invalid_weights', `weight of ${name} must be at most ${MAX_WEIGHT}, got ${w}`);
  }
  const full: Record<string, number> = {};
  for (const v of service.versions) full[v.name] = (weights[v.name] as number | undefined) ?? 0;
  if (!Object.values(full).some((w) => w > 0)) throw new VeerError('invalid_weights', 'all weights are 0: at least one version must get split traffic');
  return full;
}

/** Rounds a percentage to the split's resolution (1/10000 of the traffic). */
export function roundPercent(p: number): number {
  return Math.round(p * 100) / 100;
}

/** Each version's share in percent, summing to 100 (the split's resolution). */
export function toPercents(weights: Readonly<Record<string, number>>): WeightMap {
  const total = Object.values(weights).reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  for (const [name, w] of Object.entries(weights)) out[name] = total > 0 ? roundPercent((w / total) * 100) : 0;
  return out;
}

/**
 * Gives `target` exactly `percent` and shares the rest among the other
 * versions in proportion to `others` (their weights); when every other
 * weight is 0 the rest goes to the first of them. Order follows `versions`.
 */
export function splitAround(versions: readonly string[], target: string, percent: number, others: Readonly<Record<string, number>>): WeightMap {
  const p = Math.min(100, Math.max(0, roundPercent(percent)));
  const rest = roundPercent(100 - p);
  const names = versions.filter((v) => v !== target);
  const total = names.reduce((a, n) => a + (others[n] ?? 0), 0);
  const out: Record<string, number> = {};
  let given = 0;
  let last = -1;
  names.forEach((n, i) => {
    const share = total > 0 ? (others[n] ?? 0) / total : i === 0 ? 1 : 0;
    out[n] = roundPercent(rest * share);
    given += out[n];
    if (share > 0) last = i;
  });
  // Put the rounding remainder on the last version with a share, so the sum is exactly 100.
  if (last >= 0) out[names[last]!] = roundPercent(out[names[last]!]! + rest - given);
  const ordered: Record<string, number> = {};
  for (const v of versions) ordered[v] = v === target ? p : (out[v] ?? 0);
  return ordered;
}
