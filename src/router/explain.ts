// "Which version would this request get, and why": the same steps as
// route.ts, with the reasoning written out. Not on the hot path.

import type { IncomingHttpHeaders } from 'node:http';
import { BUCKETS, type CompiledService, type RequestView } from '../table/index.ts';
import { matchRuleIndex, stickyBucketOf } from './route.ts';

/** A request described by parts, as the explain endpoint and CLI take it. */
export interface ExplainInput {
  readonly headers?: Readonly<Record<string, string>>;
  readonly cookies?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly path?: string;
}

/** Why a version was chosen. */
export interface Explanation {
  readonly service: string;
  readonly version: string;
  readonly reason: string;
  readonly by: 'rule' | 'sticky' | 'random' | 'single';
  readonly rule?: { readonly index: number; readonly conditions: readonly string[] };
  readonly bucket?: number;
  readonly range?: readonly [number, number];
  readonly weights: Readonly<Record<string, number>>;
}

/** Builds the request view the router reads from an explain input. */
export function describeRequest(input: ExplainInput): RequestView {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(input.headers ?? {})) headers[name.toLowerCase()] = value;
  const cookies = Object.entries(input.cookies ?? {});
  if (cookies.length > 0) {
    const extra = cookies.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
    headers.cookie = headers.cookie ? `${headers.cookie}; ${extra}` : extra;
  }
  let url = input.path ?? '/';
  const query = new URLSearchParams(input.query ?? {}).toString();
  if (query) url += (url.includes('?') ? '&' : '?') + query;
  return { headers, url };
}

/**
 * Explains the choice for `req` within `service`. With no sticky key the
 * choice is random; the answer then gives each version's chance instead.
 */
export function explainChoice(service: CompiledService, req: RequestView): Explanation {
  const weights = service.split.weights;
  const r = matchRuleIndex(service.rules, req);
  if (r !== -1) {
    const rule = service.rules[r]!;
    const conditions = rule.conditions.map((c) => c.description);
    return {
      service: service.name,
      version: rule.to.name,
      by: 'rule',
      rule: { index: rule.index, conditions },
      reason: `route rule ${rule.index} matched (${conditions.join(' and ')})`,
      weights,
    };
  }
  const split = service.split;
  if (split.versions.length === 1) {
    return { service: service.name, version: split.versions[0]!.name, by: 'single', reason: 'the service has a single version', weights };
  }
  const bucket = stickyBucketOf(split, req);
  if (bucket !== -1) {
    let i = 0;
    while (i < split.ends.length - 1 && bucket >= split.ends[i]!) i++;
    const start = i === 0 ? 0 : split.ends[i - 1]!;
    const range = [start, split.ends[i]!] as const;
    const sticky = split.sticky!;
    return {
      service: service.name,
      version: split.versions[i]!.name,
      by: 'sticky',
      bucket,
      range,
      reason: `sticky ${sticky.kind} ${sticky.name} hashes to bucket ${bucket} of ${BUCKETS}, in ${split.versions[i]!.name}'s range [${range[0]}, ${range[1]})`,
      weights,
    };
  }
  // Random: report the most likely version and every version's chance.
  let best = 0;
  for (let i = 1; i < split.percents.length; i++) if (split.percents[i]! > split.percents[best]!) best = i;
  const chances = split.versions.map((v, i) => `${v.name} ${split.percents[i]}%`).join(', ');
  const why = split.sticky ? `no sticky ${split.sticky.kind} ${split.sticky.name} in the request, so` : 'the split is not sticky, so';
  return {
    service: service.name,
    version: split.versions[best]!.name,
    by: 'random',
    reason: `${why} the version is drawn at random by weight (${chances}); most likely ${split.versions[best]!.name}`,
    weights,
  };
}
