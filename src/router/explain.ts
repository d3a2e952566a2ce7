// "Which version would this request get, and why": the same steps as
// route.ts, with the reasoning written out. Not on the hot path.

import type { IncomingHttpHeaders } from 'node:http';
import { BUCKETS, pathEndOf, precedenceReason, type CompiledService, type RequestView, type RouteEntry } from '../table/index.ts';
import { entryMatches, matchRuleIndex, pickByAction, stickyBucketOf } from './route.ts';

/** A request described by parts, as the explain endpoint and CLI take it. */
export interface ExplainInput {
  readonly headers?: Readonly<Record<string, string>>;
  readonly cookies?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly path?: string;
  readonly method?: string;
}

/** Why a version was chosen. */
export interface Explanation {
  readonly service: string;
  readonly version: string;
  readonly reason: string;
  readonly by: 'rule' | 'sticky' | 'random' | 'single' | 'none';
  readonly rule?: { readonly index: number; readonly conditions: readonly string[]; readonly match?: number; readonly name?: string };
  /** With `rules:`: rules whose match also held but lost on precedence, and why. */
  readonly outranked?: readonly { readonly rule: number; readonly match: number; readonly why: string }[];
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
  return input.method === undefined ? { headers, url } : { headers, url, method: input.method.toUpperCase() };
}

/**
 * Explains the choice for `req` within `service`. With no sticky key the
 * choice is random; the answer then gives each version's chance instead.
 */
export function explainChoice(service: CompiledService, req: RequestView): Explanation {
  if (service.actions.length > 0) return explainRules(service, req);
  return explainSplit(service, req);
}

function describeEntry(entry: RouteEntry): string[] {
  return [entry.path.description, ...(entry.method === null ? [] : [`method ${entry.method}`]), ...entry.conditions.map((c) => c.description)];
}

/**
 * A service with `rules:`: the first of its entries (in precedence order)
 * that holds decides; entries of rules written earlier that also held are
 * named with the reason they lost. Other services of the host are not
 * weighed here (their entries compete the same way in the router).
 */
function explainRules(service: CompiledService, req: RequestView): Explanation {
  const url = req.url ?? '/';
  const end = pathEndOf(url);
  const weights = service.split.weights;
  const winner = service.entries.findIndex((entry) => entryMatches(entry, req, url, end));
  if (winner === -1) {
    return { service: service.name, version: '', by: 'none', reason: `no match of the service's ${service.actions.length} rule matches holds: such a request is not this service's (404 unless another service takes it)`, weights };
  }
  const entry = service.entries[winner]!;
  const action = service.actions[entry.action]!;
  const version = pickByAction(service, action, req, url, () => 0);
  const outranked = service.entries
    .slice(winner + 1)
    .filter((other) => entryMatches(other, req, url, end))
    .map((other) => {
      const lost = service.actions[other.action]!;
      return { rule: lost.rule, match: lost.match, why: precedenceReason(entry, other) ?? 'it comes later in the config' };
    });
  const conditions = describeEntry(entry);
  const name = action.name === null ? `rule ${action.rule}` : `rule ${action.rule} (${action.name})`;
  const target = action.to !== null ? `sends to ${action.to.name}` : action.split !== null ? "draws from the rule's own split" : "draws from the service's split";
  const lost = outranked.length === 0 ? '' : `; also matched but outranked: ${outranked.map((o) => `rule ${o.rule} match ${o.match} (${o.why})`).join(', ')}`;
  return {
    service: service.name,
    version: action.to !== null ? action.to.name : version.name,
    by: 'rule',
    rule: { index: action.rule, match: action.match, ...(action.name === null ? {} : { name: action.name }), conditions },
    outranked,
    reason: `${name} match ${action.match} holds (${conditions.join(' and ')}) and ${target}${action.to === null ? ' (with no sticky key: at random by weight)' : ''}${lost}`,
    weights,
  };
}

function explainSplit(service: CompiledService, req: RequestView): Explanation {
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
      reason: rule.preview ? `the blue-green rollout's preview rule matched (${conditions.join(' and ')}): ${rule.to.name} before the switch` : `route rule ${rule.index} matched (${conditions.join(' and ')})`,
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
