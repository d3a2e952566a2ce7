// A service's `rules:` (Gateway API's HTTPRouteRule) -> route entries and
// actions. Each match of each rule becomes one entry: a path condition, a
// method and header/query/cookie matchers, ranked by Gateway API's
// precedence so the router can take the first entry that holds:
//
//   1. Exact path            (longest first)
//   2. RegularExpression     (config order; as Envoy Gateway ranks it)
//   3. PathPrefix            (longest first, by whole segments)
//   then: a method match, more header (and cookie) matches, more query
//   matches, then config order (services, then rules, then matches).
//
// A service without `rules:` has one catch-all entry: PathPrefix of its own
// pathPrefix, no conditions, leading to its `routes:` and split.

import type { HttpRuleConfig, PathModifierConfig, RuleFilterConfig, ServiceConfig } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import { createNamedMatcher, compileWholeRegex, MatcherSpecError, type Matcher } from './matchers.ts';
import type { WholeRegex } from './regex.ts';
import { hasPathPrefix, normalizePathPrefix } from './paths.ts';
import type { CompiledAction, CompiledFilters, CompiledSplit, CompiledVersion, HeaderEdits, PathCondition, PathModifier, RouteEntry } from './types.ts';
import type { Path, Report } from './compile-service.ts';

/** Compiles a split against versions (the service's compileSplit, passed in to keep one implementation). */
export type SplitCompiler = (spec: NonNullable<ServiceConfig['split']>, path: Path, versions: readonly CompiledVersion[]) => CompiledSplit | null;

/** What `rules:` compile to. */
export interface CompiledRules {
  readonly actions: readonly CompiledAction[];
  readonly entries: readonly RouteEntry[];
}

const QUESTION = 0x3f;
const HASH = 0x23;

class ExactPath implements PathCondition {
  readonly kind = 'Exact' as const;
  readonly value: string;
  readonly suffix = '';
  readonly description: string;
  constructor(value: string) {
    this.value = value;
    this.description = `path = ${value}`;
  }
  matchPath(url: string): boolean {
    const value = this.value;
    if (!url.startsWith(value)) return false;
    if (url.length === value.length) return true;
    const c = url.charCodeAt(value.length);
    return c === QUESTION || c === HASH;
  }
}

class PrefixPath implements PathCondition {
  readonly kind = 'PathPrefix' as const;
  readonly value: string;
  readonly suffix = '';
  readonly description: string;
  constructor(value: string) {
    this.value = normalizePathPrefix(value);
    this.description = `path under ${this.value}`;
  }
  matchPath(url: string): boolean {
    return hasPathPrefix(url, this.value);
  }
}

/** Longest path a regex is run against; longer never matches (linear time is still time). */
const MAX_REGEX_PATH = 8192;

class RegexPath implements PathCondition {
  readonly kind = 'RegularExpression' as const;
  readonly value: string;
  readonly suffix: string;
  readonly description: string;
  readonly #regex: WholeRegex;
  constructor(value: string) {
    this.value = value;
    this.#regex = compileWholeRegex(value, 'value');
    this.suffix = this.#regex.suffix;
    this.description = `path ~ /^(?:${value})$/`;
  }
  matchPath(url: string, end: number): boolean {
    return end <= MAX_REGEX_PATH && this.#regex.matches(url, end);
  }
}

/** Builds a path condition; throws MatcherSpecError for a regex RE2 cannot run. */
export function createPathCondition(type: PathCondition['kind'], value: string): PathCondition {
  if (type === 'Exact') return new ExactPath(value);
  if (type === 'PathPrefix') return new PrefixPath(value);
  return new RegexPath(value);
}

const KIND_RANK = { Exact: 0, RegularExpression: 1, PathPrefix: 2 } as const;

/** Gateway API's precedence between two entries; ties (0) keep config order, as a stable sort does. */
export function compareEntries(a: RouteEntry, b: RouteEntry): number {
  const kind = KIND_RANK[a.path.kind] - KIND_RANK[b.path.kind];
  if (kind !== 0) return kind;
  if (a.path.kind !== 'RegularExpression') {
    const length = b.path.value.length - a.path.value.length;
    if (length !== 0) return length;
  }
  const method = (b.method === null ? 0 : 1) - (a.method === null ? 0 : 1);
  if (method !== 0) return method;
  const headers = b.headerCount - a.headerCount;
  if (headers !== 0) return headers;
  return b.queryCount - a.queryCount;
}

/** Why `winner` ranks before `loser`, in words (explain); null when only config order decides. */
export function precedenceReason(winner: RouteEntry, loser: RouteEntry): string | null {
  if (winner.path.kind !== loser.path.kind) return `a ${winner.path.kind} path ranks before a ${loser.path.kind} one`;
  if (winner.path.kind !== 'RegularExpression' && winner.path.value.length !== loser.path.value.length) return `a longer path (${winner.path.value}) ranks before a shorter one (${loser.path.value})`;
  if ((winner.method === null) !== (loser.method === null)) return 'a match with a method ranks before one without';
  if (winner.headerCount !== loser.headerCount) return `more header matches (${winner.headerCount} against ${loser.headerCount})`;
  if (winner.queryCount !== loser.queryCount) return `more query matches (${winner.queryCount} against ${loser.queryCount})`;
  return null;
}

/** The catch-all entry of a service without `rules:`. */
export function catchAllEntry(pathPrefix: string): RouteEntry {
  return Object.freeze({ action: -1, path: new PrefixPath(pathPrefix), method: null, conditions: Object.freeze([]), headerCount: 0, queryCount: 0 });
}

/** Headers a modifier may not touch: veer frames the message and picks the upstream from them. */
const OWNED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/**
 * Compiles `spec.rules`. `versions` are the service's; `splitOf` compiles a
 * rule's own split over a given version list. Entries come back in
 * precedence order.
 */
export function compileRuleSet(
  spec: ServiceConfig,
  base: Path,
  versions: readonly CompiledVersion[],
  versionsByName: ReadonlyMap<string, CompiledVersion>,
  splitOf: SplitCompiler,
  report: Report,
  /** The service split's order (config indexes), when it is not config order (a release member). */
  splitOrder: readonly number[] | null = null,
): CompiledRules {
  const actions: CompiledAction[] = [];
  const entries: RouteEntry[] = [];
  const servicePrefix = spec.match.pathPrefix;
  (spec.rules ?? []).forEach((rule, ri) => {
    const at: Path = [...base, 'rules', ri];
    const label = rule.name ?? `rules[${ri}]`;
    if (!checkTargets(rule, at, versionsByName, report, spec.name)) return;
    const matches = rule.matches === undefined || rule.matches.length === 0 ? [{}] : rule.matches;
    matches.forEach((match, mi) => {
      const mat: Path = rule.matches === undefined || rule.matches.length === 0 ? at : [...at, 'matches', mi];
      let path: PathCondition;
      const pathSpec = match.path ?? { type: 'PathPrefix' as const, value: servicePrefix };
      try {
        path = createPathCondition(pathSpec.type, pathSpec.value);
      } catch (err) {
        if (!(err instanceof MatcherSpecError)) throw err;
        report(err.code, [...mat, 'path', 'value'], err.message);
        return;
      }
      const conditions: Matcher[] = [];
      let ok = true;
      const add = (kind: 'header' | 'cookie' | 'query', key: 'headers' | 'cookies' | 'queryParams') => {
        (match[key] ?? []).forEach((condition, ci) => {
          try {
            conditions.push(createNamedMatcher(kind, condition));
          } catch (err) {
            if (!(err instanceof MatcherSpecError)) throw err;
            report(err.code, [...mat, key, ci, ...(err.field ? [err.field] : [])], err.message);
            ok = false;
          }
        });
      };
      add('header', 'headers');
      add('cookie', 'cookies');
      add('query', 'queryParams');
      const filters = compileFilters(rule, label, at, pathSpec.type === 'PathPrefix' ? normalizePathPrefix(pathSpec.value) : null, versionsByName, report);
      if (!ok || filters === undefined) return;
      const action = compileAction(rule, ri, mi, at, filters, versions, versionsByName, splitOf, splitOrder);
      if (action === null) return;
      entries.push(
        Object.freeze({
          action: actions.length,
          path,
          method: match.method ?? null,
          conditions: Object.freeze(conditions),
          headerCount: (match.headers?.length ?? 0) + (match.cookies?.length ?? 0),
          queryCount: match.queryParams?.length ?? 0,
        }),
      );
      actions.push(action);
    });
  });
  // Array.prototype.sort is stable: equal entries keep config order.
  // `actions` stays a plain array: the router indexes it on every request (see runOf in host-index.ts).
  return { actions, entries: Object.freeze(entries.sort(compareEntries)) };
}

/** `to`, `split` and a redirect exclude each other; names must be versions. */
function checkTargets(rule: HttpRuleConfig, at: Path, versionsByName: ReadonlyMap<string, CompiledVersion>, report: Report, service: string): boolean {
  const redirect = rule.filters?.some((f) => 'requestRedirect' in f) ?? false;
  if (rule.to !== undefined && rule.split !== undefined) {
    report('invalid_rule', at, 'takes `to` or `split`, not both');
    return false;
  }
  if (redirect && (rule.to !== undefined || rule.split !== undefined)) {
    report('invalid_rule', [...at, rule.to !== undefined ? 'to' : 'split'], 'a requestRedirect answers without an upstream: drop `to`/`split`');
    return false;
  }
  if (rule.to !== undefined && !versionsByName.has(rule.to)) {
    report('unknown_version', [...at, 'to'], `"${rule.to}" is not a version of service ${service} (versions: ${[...versionsByName.keys()].join(', ')})`);
    return false;
  }
  return true;
}

function compileAction(
  rule: HttpRuleConfig,
  ri: number,
  mi: number,
  at: Path,
  filters: CompiledFilters | null,
  versions: readonly CompiledVersion[],
  versionsByName: ReadonlyMap<string, CompiledVersion>,
  splitOf: SplitCompiler,
  splitOrder: readonly number[] | null,
): CompiledAction | null {
  // Copies of the versions that carry this rule's filters; without filters, the service's own.
  const own = filters === null ? versions : Object.freeze(versions.map((v) => Object.freeze({ ...v, filters })));
  let split: CompiledSplit | null = null;
  if (rule.split !== undefined) {
    split = splitOf(rule.split, [...at, 'split'], own);
    if (split === null) return null;
  }
  const to = rule.to === undefined ? null : own[versionsByName.get(rule.to)!.index]!;
  // serviceVersions is indexed like the service's split ranges.
  // A plain array, not frozen: the router indexes it on every request (see runOf in host-index.ts).
  const serviceVersions = splitOrder === null ? [...own] : splitOrder.map((i) => own[i]!);
  return Object.freeze({ rule: ri, match: mi, name: rule.name ?? null, to, split, serviceVersions, filters });
}

/**
 * A rule's filters and timeouts -> CompiledFilters; null when it has none,
 * undefined when they cannot work (reported). `matchedPrefix` is the match's
 * PathPrefix, which ReplacePrefixMatch replaces.
 */
function compileFilters(
  rule: HttpRuleConfig,
  label: string,
  at: Path,
  matchedPrefix: string | null,
  versionsByName: ReadonlyMap<string, CompiledVersion>,
  report: Report,
): CompiledFilters | null | undefined {
  const list = rule.filters ?? [];
  if (list.length === 0 && rule.timeouts === undefined) return null;
  const seen = new Set<string>();
  let ok = true;
  const filters: { -readonly [K in keyof CompiledFilters]: CompiledFilters[K] } = {
    rule: label,
    requestHeaders: null,
    responseHeaders: null,
    rewriteHost: null,
    rewritePath: null,
    redirect: null,
    mirror: null,
    requestTimeoutMs: rule.timeouts?.request === undefined ? null : parseDuration(rule.timeouts.request),
    backendTimeoutMs: rule.timeouts?.backendRequest === undefined ? null : parseDuration(rule.timeouts.backendRequest),
  };
  const fail = (code: 'invalid_rule' | 'invalid_filter' | 'unknown_version', path: Path, message: string) => {
    report(code, path, message);
    ok = false;
  };
  list.forEach((filter: RuleFilterConfig, fi) => {
    const key = Object.keys(filter)[0]!;
    const fat: Path = [...at, 'filters', fi, key];
    if (seen.has(key)) return fail('invalid_rule', fat, `${key} is given twice in this rule`);
    seen.add(key);
    const path = (modifier: PathModifierConfig): PathModifier | null => {
      if (modifier.type === 'ReplaceFullPath') return { kind: 'full', value: modifier.replaceFullPath };
      if (matchedPrefix === null) {
        fail('invalid_filter', [...fat, 'path'], 'ReplacePrefixMatch needs every match of the rule to be a PathPrefix match');
        return null;
      }
      return { kind: 'prefix', matched: matchedPrefix, value: modifier.replacePrefixMatch };
    };
    if ('requestHeaderModifier' in filter) filters.requestHeaders = headerEdits(filter.requestHeaderModifier, fat, fail);
    else if ('responseHeaderModifier' in filter) filters.responseHeaders = headerEdits(filter.responseHeaderModifier, fat, fail);
    else if ('urlRewrite' in filter) {
      if (seen.has('requestRedirect')) return fail('invalid_rule', fat, 'urlRewrite and requestRedirect exclude each other');
      filters.rewriteHost = filter.urlRewrite.hostname?.toLowerCase() ?? null;
      filters.rewritePath = filter.urlRewrite.path === undefined ? null : path(filter.urlRewrite.path);
    } else if ('requestRedirect' in filter) {
      if (seen.has('urlRewrite')) return fail('invalid_rule', fat, 'urlRewrite and requestRedirect exclude each other');
      const r = filter.requestRedirect;
      filters.redirect = Object.freeze({
        scheme: r.scheme ?? null,
        hostname: r.hostname?.toLowerCase() ?? null,
        port: r.port ?? null,
        path: r.path === undefined ? null : path(r.path),
        statusCode: r.statusCode ?? 302,
      });
    } else {
      const m = filter.requestMirror;
      const version = versionsByName.get(m.to);
      if (version === undefined) return fail('unknown_version', [...fat, 'to'], `"${m.to}" is not a version of this service (versions: ${[...versionsByName.keys()].join(', ')})`);
      if (rule.to === m.to) return fail('invalid_filter', [...fat, 'to'], `the rule already sends every request to ${m.to}: a mirror to it would double its traffic`);
      filters.mirror = Object.freeze({ version, percent: m.percent ?? 100 });
    }
  });
  return ok ? Object.freeze(filters) : undefined;
}

function headerEdits(
  spec: { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] },
  at: Path,
  fail: (code: 'invalid_filter', path: Path, message: string) => void,
): HeaderEdits | null {
  const drop = new Set<string>();
  const append: string[] = [];
  const check = (name: string, path: Path): boolean => {
    if (!OWNED_HEADERS.has(name.toLowerCase())) return true;
    fail('invalid_filter', path, `${name} is framed or chosen by veer and cannot be modified (use urlRewrite.hostname for the Host)`);
    return false;
  };
  (spec.remove ?? []).forEach((name, i) => check(name, [...at, 'remove', i]) && drop.add(name.toLowerCase()));
  (spec.set ?? []).forEach((h, i) => {
    if (!check(h.name, [...at, 'set', i, 'name'])) return;
    drop.add(h.name.toLowerCase());
    append.push(h.name, h.value);
  });
  (spec.add ?? []).forEach((h, i) => check(h.name, [...at, 'add', i, 'name']) && append.push(h.name, h.value));
  if (drop.size === 0 && append.length === 0) return null;
  return Object.freeze({ drop, append: Object.freeze(append) });
}
