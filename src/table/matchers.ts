// Request matchers and key readers, built once per config (spec -> instance).
// Each factory checks its spec at compile time and returns an object whose
// one method runs on the hot path without allocating beyond decoding a value.

import type { IncomingHttpHeaders } from 'node:http';
import { RE2JS } from 're2js';
import type { NamedMatchConfig, ValueMatcherConfig } from '../config/index.ts';
import { CodedError, type ConfigIssueCode } from '../errors.ts';
import { WholeRegex } from './regex.ts';

/** The parts of a request that routing reads; `http.IncomingMessage` is one. */
export interface RequestView {
  readonly headers: IncomingHttpHeaders;
  readonly url?: string | undefined;
  readonly method?: string | undefined;
}

/** Reads one named value (a header, cookie or query parameter) from a request. */
export interface ValueReader {
  readonly kind: 'header' | 'cookie' | 'query';
  readonly name: string;
  read(req: RequestView): string | undefined;
}

/** One condition of a route rule. */
export interface Matcher {
  readonly description: string;
  /** For an Exact condition, the key it reads and the value it wants, so the table can index entries by them. */
  readonly exact?: { readonly reader: ValueReader; readonly value: string };
  match(req: RequestView): boolean;
}

/** A spec that could not be compiled; `field` names the offending key. */
export class MatcherSpecError extends CodedError<ConfigIssueCode> {
  readonly field: string | undefined;
  constructor(code: ConfigIssueCode, message: string, field?: string) {
    super(code, message);
    this.field = field;
  }
}

class HeaderReader implements ValueReader {
  readonly kind = 'header' as const;
  readonly name: string;
  constructor(name: string) {
    this.name = name.toLowerCase();
  }
  read(req: RequestView): string | undefined {
    const value = req.headers[this.name];
    // Node joins repeated headers with ", " except set-cookie; take the first of an array.
    return typeof value === 'string' ? value : value?.[0];
  }
}

/** A reader of `name=value` pairs (cookies, query parameters): the name and its `name=` prefix, built once. */
abstract class PairReader {
  readonly name: string;
  protected readonly prefix: string;
  constructor(name: string) {
    this.name = name;
    this.prefix = `${name}=`;
  }
}

class CookieReader extends PairReader implements ValueReader {
  readonly kind = 'cookie' as const;
  read(req: RequestView): string | undefined {
    const header = req.headers.cookie;
    if (header === undefined) return undefined;
    return findPair(header, 0, header.length, this.name, this.prefix, ';', true);
  }
}

class QueryReader extends PairReader implements ValueReader {
  readonly kind = 'query' as const;
  read(req: RequestView): string | undefined {
    const url = req.url;
    if (url === undefined) return undefined;
    const q = url.indexOf('?');
    if (q === -1) return undefined;
    // A `?` after a `#` belongs to the fragment: then there is no query.
    const hash = url.indexOf('#');
    if (hash !== -1 && hash < q) return undefined;
    return findPair(url, q + 1, hash === -1 ? url.length : hash, this.name, this.prefix, '&', false);
  }
}

/**
 * HOT PATH. Finds `name=value` in the `sep`-separated list list[from, to) and returns the
 * decoded value of the first occurrence. A bare `name` (no `=`) reads as "".
 * `prefix` is `name=`, passed in so nothing is built per request.
 */
function findPair(list: string, from: number, to: number, name: string, prefix: string, sep: string, trimSpaces: boolean): string | undefined {
  let start = from;
  while (start <= to) {
    let end = list.indexOf(sep, start);
    if (end === -1 || end > to) end = to;
    let s = start;
    if (trimSpaces) while (s < end && list.charCodeAt(s) === 32) s++;
    if (s + prefix.length <= end && list.startsWith(prefix, s)) {
      return decodeValue(list.slice(s + prefix.length, end), trimSpaces);
    }
    if (end - s === name.length && list.startsWith(name, s)) return '';
    start = end + 1;
  }
  return undefined;
}

function decodeValue(raw: string, isCookie: boolean): string {
  let value = raw;
  if (isCookie) {
    value = value.trimEnd();
    if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) {
      value = value.slice(1, -1);
    }
  } else if (value.includes('+')) {
    value = value.replace(/\+/g, ' ');
  }
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // malformed escapes are compared as sent
  }
}

/** Builds the reader for a header, cookie or query key. */
export function createValueReader(kind: 'header' | 'cookie' | 'query', name: string): ValueReader {
  switch (kind) {
    case 'header':
      return new HeaderReader(name);
    case 'cookie':
      return new CookieReader(name);
    case 'query':
      return new QueryReader(name);
  }
}

class ExactMatcher implements Matcher {
  readonly description: string;
  readonly exact: { readonly reader: ValueReader; readonly value: string };
  readonly #reader: ValueReader;
  readonly #value: string;
  constructor(reader: ValueReader, value: string) {
    this.#reader = reader;
    this.#value = value;
    this.exact = Object.freeze({ reader, value });
    this.description = `${reader.kind} ${reader.name} = ${JSON.stringify(value)}`;
  }
  match(req: RequestView): boolean {
    return this.#reader.read(req) === this.#value;
  }
}

/**
 * A regex condition. A `regex:` condition finds a match anywhere in the
 * value, by RE2's linear-time engine (re2js): no pattern and no input can
 * make it backtrack, so one request cannot stall the process (about 0.5 µs
 * a match, paid only by rules that use a regex). A Gateway API
 * RegularExpression must match the whole value, on the engine WholeRegex
 * picks.
 */
class RegexMatcher implements Matcher {
  readonly description: string;
  readonly #reader: ValueReader;
  readonly #find: RE2JS | null;
  readonly #whole: WholeRegex | null;
  constructor(reader: ValueReader, source: string, regex: { find: RE2JS } | { whole: WholeRegex }) {
    this.#reader = reader;
    this.#find = 'find' in regex ? regex.find : null;
    this.#whole = 'whole' in regex ? regex.whole : null;
    this.description = `${reader.kind} ${reader.name} ~ /${this.#whole === null ? source : `^(?:${source})$`}/`;
  }
  match(req: RequestView): boolean {
    const value = this.#reader.read(req);
    // Oversized values never match: linear time is still time.
    if (value === undefined || value.length > MAX_REGEX_INPUT) return false;
    return this.#whole !== null ? this.#whole.matches(value, value.length) : this.#find!.matcher(value).find();
  }
}

/** Compiles an RE2 pattern from config, or throws the `invalid_regex` spec error naming `field`. */
export function compileRegex(source: string, field: string): RE2JS {
  try {
    return RE2JS.compile(source);
  } catch (err) {
    throw new MatcherSpecError('invalid_regex', `is not a regular expression in RE2 syntax (no lookaround, no backreferences): ${(err as Error).message}`, field);
  }
}

/** Compiles an RE2 pattern from config for whole-value matches, or throws as compileRegex does. */
export function compileWholeRegex(source: string, field: string): WholeRegex {
  return new WholeRegex(source, compileRegex(source, field));
}

class PresenceMatcher implements Matcher {
  readonly description: string;
  readonly #reader: ValueReader;
  readonly #present: boolean;
  constructor(reader: ValueReader, present: boolean) {
    this.#reader = reader;
    this.#present = present;
    this.description = `${reader.kind} ${reader.name} ${present ? 'is present' : 'is absent'}`;
  }
  match(req: RequestView): boolean {
    return (this.#reader.read(req) !== undefined) === this.#present;
  }
}

/** Longest header/cookie/query value a regex is run against; longer never matches. */
export const MAX_REGEX_INPUT = 8192;

/**
 * Builds a matcher from `{ name, value | regex | present }`. Exactly one of
 * the three must be given; a regex must be RE2 syntax (no lookaround, no
 * backreferences: what a linear-time engine can run).
 */
export function createMatcher(kind: 'header' | 'cookie' | 'query', spec: ValueMatcherConfig): Matcher {
  const given = (['value', 'regex', 'present'] as const).filter((k) => spec[k] !== undefined);
  if (given.length !== 1) {
    throw new MatcherSpecError(
      'invalid_matcher',
      given.length === 0 ? 'needs one of value, regex or present' : `takes only one of value, regex or present (got ${given.join(', ')})`,
    );
  }
  const reader = createValueReader(kind, spec.name);
  if (spec.value !== undefined) return new ExactMatcher(reader, spec.value);
  if (spec.present !== undefined) return new PresenceMatcher(reader, spec.present);
  return new RegexMatcher(reader, spec.regex!, { find: compileRegex(spec.regex!, 'regex') });
}

/**
 * Builds a matcher from a `rules:` condition, Gateway API's shape:
 * `{ name, type: Exact | RegularExpression | Present, value }`. A regex here
 * must match the whole value, as Gateway API implementations do.
 */
export function createNamedMatcher(kind: 'header' | 'cookie' | 'query', spec: NamedMatchConfig): Matcher {
  const reader = createValueReader(kind, spec.name);
  if (spec.type === 'Present') return new PresenceMatcher(reader, true);
  if (spec.value === undefined) throw new MatcherSpecError('invalid_rule', `type ${spec.type} needs a value`, 'value');
  if (spec.type === 'Exact') return new ExactMatcher(reader, spec.value);
  return new RegexMatcher(reader, spec.value, { whole: compileWholeRegex(spec.value, 'value') });
}

/** Builds a matcher from its (schema-validated) spec; throws MatcherSpecError when the spec cannot work. */
export type MatcherFactory = (spec: unknown) => Matcher;

/**
 * The matcher registry: a rule's condition kind (its key under `match:`) ->
 * factory, in the order a rule's conditions are checked. A new condition is
 * one entry here and one in the config schema.
 */
export const MATCHERS: ReadonlyMap<string, MatcherFactory> = new Map<string, MatcherFactory>([
  ['header', (spec) => createMatcher('header', spec as ValueMatcherConfig)],
  ['cookie', (spec) => createMatcher('cookie', spec as ValueMatcherConfig)],
  ['query', (spec) => createMatcher('query', spec as ValueMatcherConfig)],
]);
