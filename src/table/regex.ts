// Regular expressions from config (Gateway API's RegularExpression matches,
// `regex:` conditions): RE2 syntax, run in linear time, as fast as we can
// prove safe.
//
// RE2's semantics are the contract: a pattern is accepted when RE2 accepts
// it (re2js, a port of RE2's linear-time engine), and re2js runs it unless
// V8's own engine provably gives the same answer without super-linear
// backtracking. re2js costs 100-150 ns a match; V8's 10-20 ns. For that,
// this module parses a subset of RE2's syntax itself:
//
//   literals and escaped punctuation, \t \n \r \f \v \xHH, `.`, classes
//   [...] and [^...] with ranges and \d \w \s, the classes \d \D \w \W \s \S,
//   groups (...) and (?:...), alternation, and greedy quantifiers on single
//   characters: * + ? {n} {n,} {n,m}
//
// and writes each construct as the JS source with RE2's meaning (`.` is
// [^\n], \s is [\t\n\f\r ], both narrower in RE2 than in JS), over latin1
// characters (headers and request targets reach us one char per byte).
// Anything else (flags, anchors, \b, \p, named groups, lazy quantifiers, a
// quantified group, a character above \xff) stays on re2js.
//
// Why the V8 form cannot backtrack super-linearly (whole-value matches only,
// so anchored at both ends and tried from one position), given the rules
// `safeForBacktracking` checks:
//   - a quantifier with a choice (max > min) applies to one character class
//     C, and the item after it starts with characters disjoint from C and
//     cannot be skipped (or it is the end of the pattern). Giving back a
//     character of C's run puts a character of C in front of that item,
//     which fails at once: each such quantifier has one viable length,
//     reached after at most its run's length of O(1) steps;
//   - quantified groups are refused, so no choice nests in another;
//   - the alternatives of the pattern multiply to at most MAX_BRANCHES,
//     so the whole is at most that many linear passes.
// A search anywhere in the value (the `regex:` short form) is not anchored
// at the start, tries every position, and stays on re2js.
//
// Both engines get a prefilter from the parse: the value's minimum length
// and the literal text every match starts and ends with (what RE2 and
// Hyperscan look for before running an automaton).

import { RE2JS } from 're2js';
import { MatcherSpecError } from './spec-error.ts';

/** A compiled whole-value pattern. */
export interface WholePattern {
  /** Which engine runs it: V8's irregexp (proved safe) or re2js. */
  readonly engine: 'v8' | 're2';
  /** The character every match ends with, as a char code; -1 when matches may end in different ones. */
  readonly lastChar: number;
  /** HOT PATH. Whether the whole of `value` matches. */
  test(value: string): boolean;
}

/** Alternatives, multiplied across the pattern, that a V8 form may have. */
const MAX_BRANCHES = 16;

/**
 * A set of characters: bit c of word c >> 5 for the latin1 ones, and word 8
 * for every character above \xff at once (in a negated class or `.`, as in
 * RE2; a value with such characters cannot come from HTTP, but the answer
 * stays RE2's).
 */
type CharSet = Uint32Array;
const WORDS = 9;
const ABOVE_LATIN1 = 8;

interface SetItem {
  readonly kind: 'set';
  readonly set: CharSet;
  readonly min: number;
  readonly max: number;
}
interface GroupItem {
  readonly kind: 'group';
  readonly alternatives: readonly Sequence[];
}
type Item = SetItem | GroupItem;
type Sequence = readonly Item[];

/** Thrown inside the parser for a construct outside the subset: the pattern goes to re2js. */
class Unsupported extends Error {}

const emptySet = (): CharSet => new Uint32Array(WORDS);
function setOf(...codes: number[]): CharSet {
  const s = emptySet();
  for (const c of codes) s[c >> 5]! |= 1 << (c & 31);
  return s;
}
function addRange(s: CharSet, from: number, to: number): void {
  for (let c = from; c <= to; c++) s[c >> 5]! |= 1 << (c & 31);
}
function union(a: CharSet, b: CharSet): CharSet {
  const s = emptySet();
  for (let i = 0; i < WORDS; i++) s[i] = a[i]! | b[i]!;
  return s;
}
function complement(a: CharSet): CharSet {
  const s = emptySet();
  for (let i = 0; i < ABOVE_LATIN1; i++) s[i] = ~a[i]! >>> 0;
  s[ABOVE_LATIN1] = a[ABOVE_LATIN1]! === 0 ? 1 : 0;
  return s;
}
function disjoint(a: CharSet, b: CharSet): boolean {
  for (let i = 0; i < WORDS; i++) if ((a[i]! & b[i]!) !== 0) return false;
  return true;
}
function has(s: CharSet, c: number): boolean {
  return (s[c >> 5]! & (1 << (c & 31))) !== 0;
}
function members(s: CharSet): number[] {
  const out: number[] = [];
  for (let c = 0; c < 256; c++) if (has(s, c)) out.push(c);
  return out;
}

const DIGIT = (() => {
  const s = emptySet();
  addRange(s, 0x30, 0x39);
  return s;
})();
const WORD = (() => {
  const s = emptySet();
  addRange(s, 0x30, 0x39);
  addRange(s, 0x41, 0x5a);
  addRange(s, 0x61, 0x7a);
  s[0x5f >> 5]! |= 1 << (0x5f & 31);
  return s;
})();
/** RE2's \s: [\t\n\f\r ] (no \v, unlike JS and Perl). */
const SPACE = setOf(0x09, 0x0a, 0x0c, 0x0d, 0x20);
/** RE2's `.` without the s flag: anything but \n. */
const DOT = complement(setOf(0x0a));

const CLASS_ESCAPES: Record<string, CharSet> = { d: DIGIT, D: complement(DIGIT), w: WORD, W: complement(WORD), s: SPACE, S: complement(SPACE) };
const CHAR_ESCAPES: Record<string, number> = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, v: 0x0b };

/** The parser of the subset; throws Unsupported past it. */
class Parser {
  readonly #src: string;
  #at = 0;
  constructor(src: string) {
    this.#src = src;
  }

  parse(): Sequence[] {
    const alternatives = this.#alternatives();
    if (this.#at !== this.#src.length) throw new Unsupported();
    return alternatives;
  }

  #peek(): string | undefined {
    return this.#src[this.#at];
  }

  #alternatives(): Sequence[] {
    const out: Sequence[] = [this.#sequence()];
    while (this.#peek() === '|') {
      this.#at++;
      out.push(this.#sequence());
    }
    return out;
  }

  #sequence(): Item[] {
    const items: Item[] = [];
    for (let c = this.#peek(); c !== undefined && c !== '|' && c !== ')'; c = this.#peek()) {
      const atom = this.#atom();
      const quantifier = this.#quantifier();
      if (quantifier === null) items.push(atom.kind === 'set' ? { kind: 'set', set: atom.set, min: 1, max: 1 } : atom);
      else if (atom.kind === 'set') items.push({ kind: 'set', set: atom.set, ...quantifier });
      else throw new Unsupported(); // a quantified group: choices inside choices
    }
    return items;
  }

  #atom(): { kind: 'set'; set: CharSet } | GroupItem {
    const c = this.#src[this.#at++]!;
    if (c === '(') {
      if (this.#src.startsWith('?:', this.#at)) this.#at += 2;
      else if (this.#peek() === '?') throw new Unsupported(); // flags, named groups
      const alternatives = this.#alternatives();
      if (this.#src[this.#at++] !== ')') throw new Unsupported();
      return { kind: 'group', alternatives };
    }
    if (c === '.') return { kind: 'set', set: DOT };
    if (c === '[') return { kind: 'set', set: this.#class() };
    if (c === '\\') return { kind: 'set', set: this.#escape() };
    if ('^$*+?{}])'.includes(c)) throw new Unsupported();
    return { kind: 'set', set: this.#literal(c.charCodeAt(0)) };
  }

  #literal(code: number): CharSet {
    if (code > 0xff) throw new Unsupported();
    return setOf(code);
  }

  /** After a backslash: a class escape or one character. */
  #escape(): CharSet {
    const e = this.#src[this.#at++];
    if (e === undefined) throw new Unsupported();
    const cls = CLASS_ESCAPES[e];
    if (cls !== undefined) return cls;
    const ch = CHAR_ESCAPES[e];
    if (ch !== undefined) return setOf(ch);
    if (e === 'x') {
      const hex = this.#src.slice(this.#at, this.#at + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Unsupported();
      this.#at += 2;
      return setOf(parseInt(hex, 16));
    }
    // Escaped punctuation is itself; escaped letters and digits are RE2's specials (\b, \pN, \1, ...).
    if (/[0-9A-Za-z]/.test(e)) throw new Unsupported();
    return this.#literal(e.charCodeAt(0));
  }

  #class(): CharSet {
    let negated = false;
    if (this.#peek() === '^') {
      negated = true;
      this.#at++;
    }
    // `]` first, POSIX classes and nested brackets read differently across engines: not in the subset.
    if (this.#peek() === ']' || this.#peek() === '[') throw new Unsupported();
    let set = emptySet();
    for (;;) {
      const c = this.#src[this.#at++];
      if (c === undefined || c === '[') throw new Unsupported();
      if (c === ']') break;
      let from: CharSet;
      if (c === '\\') from = this.#escape();
      else from = this.#literal(c.charCodeAt(0));
      const single = members(from);
      if (this.#peek() === '-' && this.#src[this.#at + 1] !== ']' && this.#src[this.#at + 1] !== undefined) {
        this.#at++;
        const d = this.#src[this.#at++]!;
        if (single.length !== 1 || d === '[') throw new Unsupported();
        const end = d === '\\' ? members(this.#escape()) : [d.charCodeAt(0)];
        const to = end[0]!;
        if (end.length !== 1 || to > 0xff || to < single[0]!) throw new Unsupported();
        addRange(set, single[0]!, to);
      } else {
        set = union(set, from);
      }
    }
    return negated ? complement(set) : set;
  }

  /** A greedy quantifier after an atom, or null; lazy ones are not in the subset. */
  #quantifier(): { min: number; max: number } | null {
    const c = this.#peek();
    let q: { min: number; max: number } | null = null;
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(this.#src.slice(this.#at));
      if (m === null) throw new Unsupported(); // RE2 reads a stray { as a literal; leave that to it
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.#at += m[0].length - 1;
      q = { min, max };
    }
    if (q === null) return null;
    this.#at++;
    if (this.#peek() === '?' || this.#peek() === '*' || this.#peek() === '+' || this.#peek() === '{') throw new Unsupported();
    return q;
  }
}

/** The characters a sequence can start with, when its first item cannot be skipped; null otherwise. */
function firstSet(items: Sequence, from: number): CharSet | null {
  const item = items[from];
  if (item === undefined) return null;
  if (item.kind === 'set') return item.min >= 1 ? item.set : null;
  let all = emptySet();
  for (const alt of item.alternatives) {
    const f = firstSet(alt, 0);
    if (f === null) return null;
    all = union(all, f);
  }
  return all;
}

/** The rules in the header comment: quantifiers with a choice are followed by what they cannot give back into. */
function safeSequence(items: Sequence, topLevel: boolean): boolean {
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.kind === 'group') {
      if (!item.alternatives.every((alt) => safeSequence(alt, false))) return false;
      continue;
    }
    if (item.max === item.min) continue;
    if (i === items.length - 1) {
      if (!topLevel) return false;
      continue;
    }
    const next = firstSet(items, i + 1);
    if (next === null || !disjoint(item.set, next)) return false;
  }
  return true;
}

function branches(alternatives: readonly Sequence[]): number {
  let total = 0;
  for (const alt of alternatives) {
    let product = 1;
    for (const item of alt) if (item.kind === 'group') product *= branches(item.alternatives);
    total += product;
  }
  return total;
}

function minLength(alternatives: readonly Sequence[]): number {
  let least = Infinity;
  for (const alt of alternatives) {
    let n = 0;
    for (const item of alt) n += item.kind === 'set' ? item.min : minLength(item.alternatives);
    least = Math.min(least, n);
  }
  return least;
}

/** The literal text every match starts with (`fromEnd`: ends with), from one top-level alternative. */
function literalEdge(alternatives: readonly Sequence[], fromEnd: boolean): string {
  if (alternatives.length !== 1) return '';
  const items = alternatives[0]!;
  let text = '';
  for (let k = 0; k < items.length; k++) {
    const item = items[fromEnd ? items.length - 1 - k : k]!;
    if (item.kind !== 'set' || item.min !== 1 || item.max !== 1) break;
    const only = members(item.set);
    if (only.length !== 1) break;
    const ch = String.fromCharCode(only[0]!);
    text = fromEnd ? ch + text : text + ch;
  }
  return text;
}

/** A character set as a JS class, every member escaped; one that holds the characters above \xff is written negated (JS's [^...] holds them). */
function classSource(set: CharSet): string {
  const negate = set[ABOVE_LATIN1] !== 0;
  const list = negate ? members(complement(set)) : members(set);
  let body = '';
  for (let i = 0; i < list.length; i++) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    body += j > i + 1 ? `${hex(list[i]!)}-${hex(list[j]!)}` : j === i + 1 ? hex(list[i]!) + hex(list[j]!) : hex(list[i]!);
    i = j;
  }
  if (negate) return list.length === 0 ? '[^]' : `[^${body}]`;
  return `[${body}]`;
}
const hex = (c: number) => `\\x${c.toString(16).padStart(2, '0')}`;

function jsSource(alternatives: readonly Sequence[]): string {
  return alternatives
    .map((alt) =>
      alt
        .map((item) => {
          if (item.kind === 'group') return `(?:${jsSource(item.alternatives)})`;
          const cls = classSource(item.set);
          if (item.min === 1 && item.max === 1) return cls;
          return `${cls}{${item.min},${item.max === Infinity ? '' : item.max}}`;
        })
        .join(''),
    )
    .join('|');
}

/** What the parse tells of every match: its least length, and the literal text it starts and ends with. */
interface Edges {
  readonly minLength: number;
  readonly prefix: string;
  readonly suffix: string;
}

const NO_EDGES: Edges = { minLength: 0, prefix: '', suffix: '' };

function edgesOf(alternatives: readonly Sequence[]): Edges {
  return { minLength: minLength(alternatives), prefix: literalEdge(alternatives, false), suffix: literalEdge(alternatives, true) };
}

/**
 * One class for both engines, so the call sites stay monomorphic: the
 * prefilter, then V8's form when there is one, else re2js.
 */
class Pattern implements WholePattern {
  readonly engine: 'v8' | 're2';
  readonly #v8: RegExp | null;
  readonly #re2: RE2JS;
  readonly #minLength: number;
  readonly #prefix: string;
  readonly #suffix: string;
  /** The suffix's last and the prefix's first character (-1: none): one inlined charCodeAt each rejects most values before a string compare. */
  readonly #last: number;
  readonly #first: number;
  get lastChar(): number {
    return this.#last;
  }
  constructor(v8: RegExp | null, re2: RE2JS, edges: Edges) {
    this.engine = v8 === null ? 're2' : 'v8';
    this.#v8 = v8;
    this.#re2 = re2;
    this.#minLength = edges.minLength;
    this.#prefix = edges.prefix;
    this.#suffix = edges.suffix;
    this.#last = edges.suffix === '' ? -1 : edges.suffix.charCodeAt(edges.suffix.length - 1);
    this.#first = edges.prefix === '' ? -1 : edges.prefix.charCodeAt(0);
  }
  test(value: string): boolean {
    if (value.length < this.#minLength) return false;
    if (this.#last !== -1 && (value.charCodeAt(value.length - 1) !== this.#last || !value.endsWith(this.#suffix))) return false;
    if (this.#first !== -1 && (value.charCodeAt(0) !== this.#first || !value.startsWith(this.#prefix))) return false;
    const v8 = this.#v8;
    return v8 !== null ? v8.test(value) : this.#re2.matches(value);
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

/** Compiles a pattern that must match a whole value; throws `invalid_regex` naming `field` when RE2 rejects it. */
export function compileWholePattern(source: string, field: string): WholePattern {
  const re2 = compileRegex(source, field);
  let alternatives: Sequence[];
  try {
    alternatives = new Parser(source).parse();
  } catch (err) {
    if (err instanceof Unsupported) return new Pattern(null, re2, NO_EDGES);
    throw err;
  }
  const edges = edgesOf(alternatives);
  if (!alternatives.every((alt) => safeSequence(alt, true)) || branches(alternatives) > MAX_BRANCHES) return new Pattern(null, re2, edges);
  // `u`: a character is a code point, as in RE2 (a value with a surrogate pair cannot come from
  // HTTP, whose strings are latin1, but the answer stays RE2's).
  return new Pattern(new RegExp(`^(?:${jsSource(alternatives)})$`, 'u'), re2, edges);
}
