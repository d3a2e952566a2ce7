// Whole-value regexes from config, on the fastest engine that is provably
// safe. re2js (RE2's linear-time automaton in JS) validates every pattern
// and stays the fallback, at ~140 ns a match; a pattern in a small subset of
// RE2's syntax that provably cannot backtrack super-linearly is translated
// to V8's own engine (~15 ns), and a plain list of literals is compared
// with ===. Before any engine runs, the literal prefix and suffix every
// match must have are checked (startsWith/endsWith), as RE2 and Hyperscan
// do, so `/api/v[0-9]+/users` rejects `/orders` without running at all.
//
//   source ──re2js──> valid? ──parseRegex──> AST | null (outside the subset)
//                                             ├─ all literal alternatives ─> 'literal'
//                                             ├─ isLinear(AST)            ─> 'irregexp' (translated)
//                                             └─ otherwise                ─> 're2'

import type { RE2JS } from 're2js';

/**
 * Which characters an atom matches: [0, 128) one flag per ASCII code, [128]
 * every non-ASCII code point at once (patterns in the subset name only ASCII,
 * so a class holds either all of them, negated, or none).
 */
type CharSet = Uint8Array;

const NON_ASCII = 128;

/** One character class (a literal is a class of one) repeated min..max times (max may be Infinity). */
interface Atom {
  readonly kind: 'atom';
  readonly set: CharSet;
  readonly min: number;
  readonly max: number;
}

/** A group `(...)` / `(?:...)` of alternatives (sequences), repeated min..max times. */
interface Group {
  readonly kind: 'group';
  readonly alternatives: readonly (readonly Item[])[];
  readonly min: number;
  readonly max: number;
}

/** One element of a sequence. */
export type Item = Atom | Group;

/** A parsed pattern: its top-level alternatives. */
export type RegexAst = Group;

/** Thrown inside the parser for syntax outside the subset; parseRegex answers null. */
class Unsupported extends Error {}

function setOf(...codes: number[]): CharSet {
  const set = new Uint8Array(NON_ASCII + 1);
  for (const c of codes) set[c] = 1;
  return set;
}

function rangeSet(pairs: readonly (readonly [string, string])[]): CharSet {
  const set = new Uint8Array(NON_ASCII + 1);
  for (const [lo, hi] of pairs) for (let c = lo.charCodeAt(0); c <= hi.charCodeAt(0); c++) set[c] = 1;
  return set;
}

function negate(set: CharSet): CharSet {
  return set.map((v) => 1 - v);
}

// RE2's Perl classes are ASCII-only; its \s is [\t\n\f\r ] (no \v, unlike JS's \s).
const DIGIT = rangeSet([['0', '9']]);
const WORD = rangeSet([['0', '9'], ['A', 'Z'], ['a', 'z'], ['_', '_']]);
const SPACE = setOf(9, 10, 12, 13, 32);
const PERL_CLASSES: Readonly<Record<string, CharSet>> = { d: DIGIT, w: WORD, s: SPACE, D: negate(DIGIT), W: negate(WORD), S: negate(SPACE) };
/** RE2's `.` without flags: every code point but \n. */
const DOT = negate(setOf(10));
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 9, n: 10, v: 11, f: 12, r: 13, a: 7 };
/** ASCII punctuation, which RE2 takes literally after a backslash. */
const PUNCTUATION = /^[!-/:-@[-`{-~]$/;

/**
 * Parses RE2 syntax in the subset below into an AST, or null for anything
 * else: literal ASCII characters and escaped punctuation, \t \n \v \f \r \a,
 * `.`, \d \w \s \D \W \S, classes `[...]` / `[^...]` of those with ranges,
 * groups `(...)` `(?:...)` `(?P<n>...)` `(?<n>...)`, `|`, and the quantifiers
 * * + ? {m} {m,} {m,n}, greedy or lazy. Not in it (null): anchors, flags,
 * \b \p \Q \x \0, POSIX classes, non-ASCII, and the places where RE2 reads a
 * metacharacter literally (`{` `}` `]` alone, `-` inside a class).
 * The source must already be valid RE2 (re2js compiled it).
 */
export function parseRegex(source: string): RegexAst | null {
  let at = 0;
  const peek = (): string | undefined => source[at];
  const take = (): string => {
    const c = source[at++];
    if (c === undefined || c.charCodeAt(0) >= NON_ASCII) throw new Unsupported();
    return c;
  };

  const alternation = (): Group => {
    const alternatives: Item[][] = [sequence()];
    while (peek() === '|') {
      at++;
      alternatives.push(sequence());
    }
    return { kind: 'group', alternatives, min: 1, max: 1 };
  };

  const sequence = (): Item[] => {
    const items: Item[] = [];
    for (let c = peek(); c !== undefined && c !== '|' && c !== ')'; c = peek()) items.push(quantified(atom()));
    return items;
  };

  const atom = (): Item => {
    const c = take();
    if (c === '(') {
      if (peek() === '?') {
        // Named captures are plain groups here; flags and anything else are outside the subset.
        const named = /^\?P?<[A-Za-z0-9_]+>/.exec(source.slice(at));
        if (named !== null) at += named[0].length;
        else if (source.startsWith('?:', at)) at += 2;
        else throw new Unsupported();
      }
      const group = alternation();
      if (take() !== ')') throw new Unsupported();
      return group;
    }
    if (c === '[') return { kind: 'atom', set: charClass(), min: 1, max: 1 };
    if (c === '.') return { kind: 'atom', set: DOT, min: 1, max: 1 };
    if (c === '\\') {
      const e = take();
      const perl = PERL_CLASSES[e];
      return { kind: 'atom', set: perl ?? setOf(escapedLiteral(e)), min: 1, max: 1 };
    }
    if ('^$*+?{}]'.includes(c)) throw new Unsupported();
    return { kind: 'atom', set: setOf(c.charCodeAt(0)), min: 1, max: 1 };
  };

  const escapedLiteral = (e: string): number => {
    const control = CONTROL_ESCAPES[e];
    if (control !== undefined) return control;
    if (PUNCTUATION.test(e)) return e.charCodeAt(0);
    throw new Unsupported();
  };

  const charClass = (): CharSet => {
    const negated = peek() === '^';
    if (negated) at++;
    const set = new Uint8Array(NON_ASCII + 1);
    let first = true;
    for (;;) {
      const c = take();
      if (c === ']' && !first) break;
      if (c === ']' || c === '[') throw new Unsupported();
      let lo: number;
      if (c === '-') {
        if (!first && peek() !== ']') throw new Unsupported();
        lo = 0x2d;
      } else if (c === '\\') {
        const e = take();
        const perl = PERL_CLASSES[e];
        if (perl !== undefined) {
          for (let i = 0; i <= NON_ASCII; i++) set[i] ||= perl[i]!;
          first = false;
          continue;
        }
        lo = escapedLiteral(e);
      } else lo = c.charCodeAt(0);
      let hi = lo;
      if (peek() === '-' && source[at + 1] !== ']') {
        at++;
        const d = take();
        if (d === '[' || d === ']' || d === '-') throw new Unsupported();
        hi = d === '\\' ? escapedLiteral(take()) : d.charCodeAt(0);
        if (hi < lo) throw new Unsupported();
      }
      for (let x = lo; x <= hi; x++) set[x] = 1;
      first = false;
    }
    return negated ? negate(set) : set;
  };

  const quantified = (item: Item): Item => {
    let min: number;
    let max: number;
    const c = peek();
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      // RE2 reads a `{` that starts no valid repeat literally: outside the subset.
      const m = /^\{([0-9]+)(,([0-9]*))?\}/.exec(source.slice(at));
      if (m === null) throw new Unsupported();
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      at += m[0].length - 1;
    } else return item;
    at++;
    // Lazy or greedy, a whole-value match exists for the same inputs.
    if (peek() === '?') at++;
    const next = peek();
    if (next !== undefined && '*+?{'.includes(next)) throw new Unsupported();
    return { ...item, min, max };
  };

  try {
    const ast = alternation();
    return at === source.length ? ast : null;
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}

const EMPTY: CharSet = new Uint8Array(NON_ASCII + 1);

function union(a: CharSet, b: CharSet): CharSet {
  return a.map((v, i) => v | b[i]!);
}

function intersects(a: CharSet, b: CharSet): boolean {
  return a.some((v, i) => v === 1 && b[i] === 1);
}

function isNullable(item: Item): boolean {
  return item.min === 0 || (item.kind === 'group' && item.alternatives.some((alt) => alt.every(isNullable)));
}

/** The characters a non-empty match of `items` can start with. */
function firstOfSequence(items: readonly Item[]): CharSet {
  let first = EMPTY;
  for (const item of items) {
    first = union(first, firstOf(item));
    if (!isNullable(item)) break;
  }
  return first;
}

function firstOf(item: Item): CharSet {
  if (item.max === 0) return EMPTY;
  return item.kind === 'atom' ? item.set : item.alternatives.map(firstOfSequence).reduce(union, EMPTY);
}

/**
 * Most ways through a pattern's alternations (the product of their sizes)
 * that V8 may take: each can scan the input once (see isLinear), so this
 * bounds the work to that many linear passes.
 */
const MAX_ALTERNATIVE_PATHS = 16;

function alternativePaths(group: Group): number {
  let paths = group.alternatives.length;
  for (const alt of group.alternatives) for (const item of alt) if (item.kind === 'group') paths *= alternativePaths(item);
  return paths;
}

/**
 * Whether V8's backtracking engine runs the whole-value match of `ast` in
 * time linear in the input. A sufficient rule, checked from the right with
 * FOLLOW(x), the characters that can come right after x (end of input is
 * not a character):
 *
 *   1. no group is quantified: only single-character atoms repeat;
 *   2. an atom repeated a variable number of times, over class C, has
 *      FOLLOW disjoint from C;
 *   3. the alternations multiply to at most MAX_ALTERNATIVE_PATHS paths.
 *
 * Proof sketch. The match is anchored at 0, so the engine makes one
 * attempt, a depth-first search over choice points. A repeat over C stops
 * where the next character leaves C (or at its max); every shorter count
 * leaves a character of C next, which by (2) no continuation can consume
 * first, so each of those counts fails after O(|pattern|) steps without
 * consuming input: per repeat one count can go on. By (1) a path through
 * the pattern meets each group once, so only alternations branch the search
 * into live paths, at most (3) of them, each consuming at most n characters
 * and giving each back at most once at O(|pattern|) cost: O(paths * n *
 * |pattern|) in all.
 */
export function isLinear(ast: RegexAst): boolean {
  return alternativePaths(ast) <= MAX_ALTERNATIVE_PATHS && linearWithin([ast], EMPTY);
}

function linearWithin(items: readonly Item[], follow: CharSet): boolean {
  let next = follow;
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i]!;
    if (item.kind === 'group') {
      if (item.min !== 1 || item.max !== 1) return false;
      for (const alt of item.alternatives) if (!linearWithin(alt, next)) return false;
    } else if (item.min !== item.max && intersects(item.set, next)) return false;
    next = isNullable(item) ? union(firstOf(item), next) : firstOf(item);
  }
  return true;
}

function hex(code: number): string {
  return `\\x${code.toString(16).padStart(2, '0')}`;
}

/** A JS class body for a set of ASCII codes, as ranges. */
function rangesOf(codes: readonly number[]): string {
  let out = '';
  for (let i = 0; i < codes.length; ) {
    let j = i;
    while (j + 1 < codes.length && codes[j + 1] === codes[j]! + 1) j++;
    out += j === i ? hex(codes[i]!) : `${hex(codes[i]!)}-${hex(codes[j]!)}`;
    i = j + 1;
  }
  return out;
}

/** A JS (u-mode) atom for a set: every character escaped, so nothing of the config is passed through. */
function classSource(set: CharSet): string {
  const members: number[] = [];
  const others: number[] = [];
  for (let c = 0; c < NON_ASCII; c++) (set[c] === 1 ? members : others).push(c);
  if (set[NON_ASCII] === 1) return others.length === 0 ? '[^]' : `[^${rangesOf(others)}]`;
  if (members.length === 1) return hex(members[0]!);
  return `[${rangesOf(members)}]`;
}

function quantifierSource(min: number, max: number): string {
  if (min === 1 && max === 1) return '';
  if (max === Infinity) return min === 0 ? '*' : min === 1 ? '+' : `{${min},}`;
  if (min === 0 && max === 1) return '?';
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

function sequenceSource(items: readonly Item[]): string {
  return items
    .map((item) => (item.kind === 'atom' ? classSource(item.set) : `(?:${item.alternatives.map(sequenceSource).join('|')})`) + quantifierSource(item.min, item.max))
    .join('');
}

/**
 * The JS source of a whole-value match of `ast`, for the `u` flag: RE2
 * matches code points, and so does V8 with `u` (a decoded query or cookie
 * value may hold astral characters); `.` is [^\n] as in RE2 (JS's also
 * leaves out \r, \u2028 and \u2029).
 */
export function toJsSource(ast: RegexAst): string {
  return `^${sequenceSource([ast])}$`;
}

/** The literal string `items` always match, or null when they can match anything else. */
function literalOf(items: readonly Item[]): string | null {
  let out = '';
  for (const item of items) {
    if (item.min !== item.max) return null;
    let one: string | null;
    if (item.kind === 'group') one = item.alternatives.length === 1 ? literalOf(item.alternatives[0]!) : null;
    else {
      const codes = [...item.set.keys()].filter((c) => item.set[c] === 1);
      one = codes.length === 1 && codes[0] !== NON_ASCII ? String.fromCharCode(codes[0]!) : null;
    }
    if (one === null) return null;
    out += one.repeat(item.min);
  }
  return out;
}

/** The alternatives of the pattern, through groups that wrap all of it. */
function topAlternatives(ast: RegexAst): readonly (readonly Item[])[] {
  let alternatives = ast.alternatives;
  for (;;) {
    const only = alternatives.length === 1 && alternatives[0]!.length === 1 ? alternatives[0]![0]! : null;
    if (only === null || only.kind !== 'group' || only.min !== 1 || only.max !== 1) return alternatives;
    alternatives = only.alternatives;
  }
}

/** Every string the pattern matches, when it is a list of literals (`gold|silver`); else null. */
export function literalAlternatives(ast: RegexAst): string[] | null {
  const literals: string[] = [];
  for (const alt of topAlternatives(ast)) {
    const literal = literalOf(alt);
    if (literal === null) return null;
    literals.push(literal);
  }
  return literals;
}

/** The pattern's items with every unquantified one-alternative group opened in place. */
function flatten(items: readonly Item[]): Item[] {
  return items.flatMap((item) => (item.kind === 'group' && item.alternatives.length === 1 && item.min === 1 && item.max === 1 ? flatten(item.alternatives[0]!) : [item]));
}

/** The literal text every match starts with and ends with (disjoint parts of it; '' when none). */
export function literalAffixes(ast: RegexAst): { prefix: string; suffix: string } {
  if (ast.alternatives.length !== 1) return { prefix: '', suffix: '' };
  const literals = flatten(ast.alternatives[0]!).map((item) => literalOf([item]));
  let start = 0;
  while (start < literals.length && literals[start] !== null) start++;
  let end = literals.length;
  while (end > start && literals[end - 1] !== null) end--;
  return { prefix: literals.slice(0, start).join(''), suffix: literals.slice(end).join('') };
}

/**
 * A regex from config matched against whole values, on the engine picked
 * at compile time (see the top of this file).
 */
export class WholeRegex {
  /** Which engine runs the pattern: === over literals, V8's irregexp, or re2js. */
  readonly engine: 'literal' | 'irregexp' | 're2';
  /** Literal text every match ends with ('' when none), for indexes over many patterns. */
  readonly suffix: string;
  readonly #literals: readonly string[] | null;
  readonly #prefix: string;
  readonly #suffix: string;
  readonly #js: RegExp | null;
  readonly #re2: RE2JS;

  constructor(source: string, re2: RE2JS) {
    const ast = parseRegex(source);
    this.#re2 = re2;
    this.#literals = ast === null ? null : literalAlternatives(ast);
    const { prefix, suffix } = ast === null || this.#literals !== null ? { prefix: '', suffix: '' } : literalAffixes(ast);
    this.#prefix = prefix;
    this.#suffix = suffix;
    // Built from the AST, never from `source`: only the subset's meaning reaches V8.
    this.#js = ast !== null && this.#literals === null && isLinear(ast) ? new RegExp(toJsSource(ast), 'u') : null;
    this.engine = this.#literals !== null ? 'literal' : this.#js !== null ? 'irregexp' : 're2';
    this.suffix = this.#literals === null ? suffix : this.#literals.length === 1 ? this.#literals[0]! : '';
  }

  /** HOT PATH. Whether all of input[0, end) matches. */
  matches(input: string, end: number): boolean {
    const literals = this.#literals;
    if (literals !== null) {
      for (let i = 0; i < literals.length; i++) {
        const literal = literals[i]!;
        if (literal.length === end && input.startsWith(literal)) return true;
      }
      return false;
    }
    // The prefix and suffix come from disjoint parts of the pattern, so a match holds both side by side.
    // Compared a character at a time (short literals: cheaper than a builtin's call), the suffix
    // first, as paths that share a prefix differ at their end. irregexp checks a literal prefix as
    // fast as this loop would, so only re2js, ten times dearer, gets the prefix checked first.
    const prefix = this.#prefix;
    const suffix = this.#suffix;
    if (end < prefix.length + suffix.length) return false;
    const from = end - suffix.length;
    for (let i = suffix.length - 1; i >= 0; i--) if (input.charCodeAt(from + i) !== suffix.charCodeAt(i)) return false;
    const value = end === input.length ? input : input.slice(0, end);
    const js = this.#js;
    if (js !== null) return js.test(value);
    for (let i = 0; i < prefix.length; i++) if (input.charCodeAt(i) !== prefix.charCodeAt(i)) return false;
    return this.#re2.matches(value);
  }
}
