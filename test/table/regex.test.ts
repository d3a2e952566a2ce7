import t from 'tap';
import { RE2JS } from 're2js';
import { isLinear, literalAffixes, literalAlternatives, parseRegex, toJsSource, WholeRegex } from '../../src/table/regex.ts';
import { mulberry32 } from '../helpers/prng.ts';

const whole = (source: string) => new WholeRegex(source, RE2JS.compile(source));
const test = (regex: WholeRegex, input: string) => regex.matches(input, input.length);

t.test('the subset parses, and the rest stays on re2js', async (t) => {
  for (const inSubset of ['abc', 'a.c', '[a-z0-9_-]+', '[^/]*', '\\d\\w\\s\\D\\W\\S', '(a|b)(?:c|d)(?P<n>e)(?<m>f)', 'a*b+c?d{2}e{1,}f{0,3}', 'a*?b+?', '\\.\\/\\-\\t\\n', '[-a]', '[a-]', '[\\d.]', '']) {
    t.not(parseRegex(inSubset), null, inSubset);
  }
  for (const outside of ['^a', 'a$', '(?i)a', '\\bword', '\\pL', '\\Qa.b\\E', '\\x41', '[[:alpha:]]', 'é', 'a{', '{', '}', ']', '[]a]', '[a-b-c]', '\\z', '\\0', '(?s:.)']) {
    t.equal(parseRegex(outside), null, outside);
  }
});

t.test('translation: RE2 meaning, every character escaped', async (t) => {
  t.equal(toJsSource(parseRegex('/items/[0-9]+/r7')!), '^(?:\\x2f\\x69\\x74\\x65\\x6d\\x73\\x2f[\\x30-\\x39]+\\x2f\\x72\\x37)$');
  t.equal(toJsSource(parseRegex('.')!), '^(?:[^\\x0a])$', "RE2's dot leaves out only \\n");
  t.equal(toJsSource(parseRegex('\\s')!), '^(?:[\\x09-\\x0a\\x0c-\\x0d\\x20])$', "RE2's \\s is [\\t\\n\\f\\r ]");
  const dot = whole('.');
  for (const c of ['\r', '\u2028', '\u2029', 'é', '😀', '\uD800']) t.ok(test(dot, c), `. matches U+${c.codePointAt(0)!.toString(16)} as in RE2`);
  t.notOk(test(dot, '\n'));
  t.notOk(test(whole('\\s'), '\v'), '\\v is not RE2 space');
  t.notOk(test(whole('\\s'), '\u00a0'), 'nor is a no-break space');
});

t.test('engines', async (t) => {
  t.equal(whole('gold|silver').engine, 'literal');
  t.equal(whole('(?:v1|v2)').engine, 'literal');
  t.equal(whole('/items/[0-9]+/r7').engine, 'irregexp');
  t.equal(whole('[a-f0-9]{8}-[a-f0-9]{4}').engine, 'irregexp');
  t.equal(whole('/api/.*').engine, 'irregexp', 'a repeat at the end of the pattern');
  // Unsafe for a backtracking engine: stays on RE2's automaton.
  for (const unsafe of ['(a+)+b', '.*.*x', '(a|ab)*c', '(a*)*b', 'a*a*b', '[a-z]*[a-z0-9]', '(a|a)(a|a)(a|a)(a|a)(a|a)x', '.*=.*', '\\w+\\s?\\w+']) {
    t.equal(whole(unsafe).engine, 're2', unsafe);
  }
  t.equal(whole('^a$').engine, 're2', 'anchors are outside the subset');
  t.ok(isLinear(parseRegex('[0-9]+/x?y*')!), 'each repeat is followed by characters outside its class');
  t.notOk(isLinear(parseRegex('(?:[0-9]+)?')!), 'a quantified group');
  t.notOk(isLinear(parseRegex('x*(?:y|x)')!), 'FOLLOW goes into the group after a repeat');
  t.notOk(isLinear(parseRegex('(?:ab*|c)b')!), 'and out of the group a repeat ends');
  t.notOk(isLinear(parseRegex('a?a')!), 'conservative: a harmless overlap is refused too');
});

t.test('literal prefilter', async (t) => {
  t.same(literalAffixes(parseRegex('/api/v[0-9]+/users')!), { prefix: '/api/v', suffix: '/users' });
  t.same(literalAffixes(parseRegex('(?:/a)(b)[0-9]x{2}')!), { prefix: '/ab', suffix: 'xx' });
  t.same(literalAffixes(parseRegex('a|b[0-9]')!), { prefix: '', suffix: '' }, 'none across alternatives');
  t.same(literalAlternatives(parseRegex('gold|(silver)|b{3}')!), ['gold', 'silver', 'bbb']);
  t.equal(literalAlternatives(parseRegex('gold|[st]ilver')!), null);
  const r = whole('/items/[0-9]+/r7');
  t.ok(r.matches('/items/42/r7?x=1', 12), 'matches the part before `end`');
  t.notOk(r.matches('/items/42/r7?x=1', 14));
  t.ok(whole('gold|silver').matches('gold?', 4));
  t.notOk(whole('gold|silver').matches('golden', 6), 'a literal fills all of [0, end)');
  t.ok(whole('(a+)+b').matches('aaab', 4), 're2 behind the prefilter');
});

t.test('adversarial inputs run in linear time on either engine', async (t) => {
  // Each input passes the literal prefilter, so the engine itself runs over 8 KiB.
  const input = (suffix: string) => `${'a'.repeat(8192 - 1 - suffix.length)}!${suffix}`;
  for (const [pattern, engine] of [
    ['(a+)+b', 're2'],
    ['.*.*x', 're2'],
    ['(a|ab)*c', 're2'],
    ['a*[^a]b', 'irregexp'],
    ['[a-z]*!x', 'irregexp'],
    ['(?:a|a)(?:a|a)(?:a|a)(?:a|a)a*b', 'irregexp'],
    ['a{0,1000}b', 'irregexp'],
    ['a{0,1000}[^b]*b', 're2'],
  ] as const) {
    const regex = whole(pattern);
    t.equal(regex.engine, engine, `${pattern} runs on ${engine}`);
    const value = input(pattern.slice(-1));
    const started = performance.now();
    for (let i = 0; i < 20; i++) regex.matches(value, value.length);
    const ms = performance.now() - started;
    t.equal(regex.matches(value, value.length), RE2JS.compile(pattern).matches(value), `${pattern}: the answer of re2js`);
    // A bound against super-linear time, not a benchmark: 20 linear scans of 8 KiB take milliseconds.
    t.ok(ms < 1000, `${pattern}: 20 matches over 8 KiB in ${ms.toFixed(1)} ms`);
  }
});

// A differential property test: random patterns in (and around) the subset,
// random inputs; the compiled regex must answer as re2js does, every time.
const ATOMS = ['a', 'b', 'c', '/', '-', '0', '1', '\\.', '.', '\\d', '\\w', '\\s', '\\D', '\\W', '\\S', '[ab]', '[^a]', '[a-c]', '[0-9]', '[-a]', '[b-]', '[^\\d]', '[\\w-]', '[\\s.]', '[^/]', '\\t', '\\n', '\\-', '\\/', ' '];
const OUTSIDE = ['^', '$', '(?i)', '\\b', 'é', '\\pL', '[[:alpha:]]', '\\x41', '(?s:.)'];
const QUANTIFIERS = ['', '', '', '*', '+', '?', '{2}', '{1,}', '{0,2}', '*?', '+?', '??'];
const INPUT_CHARS = ['a', 'b', 'c', '/', '-', '.', '0', '1', ' ', '\t', '\n', '\r', '\v', 'é', '😀', '\uD800', '\uDC00', '_', 'A', '\u2028'];

/** A printable name for a pattern or input (TAP is line-based: no raw U+2028). */
function escape(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function randomPattern(random: () => number, depth: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const sequence = (): string => {
    let out = '';
    const length = Math.floor(random() * 4) + (depth === 0 ? 1 : 0);
    for (let i = 0; i < length; i++) {
      const roll = random();
      let atom: string;
      if (roll < 0.03) atom = pick(OUTSIDE);
      else if (roll < 0.2 && depth < 2) atom = `${pick(['(', '(?:'])}${randomPattern(random, depth + 1)})`;
      else atom = pick(ATOMS);
      out += atom + (atom.length === 1 && '^$'.includes(atom) ? '' : pick(QUANTIFIERS));
    }
    return out;
  };
  const alternatives = [sequence()];
  while (random() < 0.25) alternatives.push(sequence());
  return alternatives.join('|');
}

t.test('differential: the same answer as re2js on generated patterns and inputs', async (t) => {
  const random = mulberry32(0x5eed);
  const engines = { literal: 0, irregexp: 0, re2: 0 };
  let checked = 0;
  let matched = 0;
  let patterns = 0;
  while (patterns < 3000) {
    const source = randomPattern(random, 0);
    let re2: RE2JS;
    try {
      re2 = RE2JS.compile(source);
    } catch {
      continue; // not RE2: compile refuses it before any engine is picked
    }
    patterns++;
    const regex = new WholeRegex(source, re2);
    engines[regex.engine]++;
    for (let i = 0; i < 60; i++) {
      let input = '';
      const length = Math.floor(random() * 7);
      for (let j = 0; j < length; j++) input += INPUT_CHARS[Math.floor(random() * (random() < 0.7 ? 8 : INPUT_CHARS.length))];
      const expected = re2.matches(input);
      if (regex.matches(input, input.length) !== expected) {
        t.fail(`${escape(source)} on ${escape(input)}: re2js says ${expected} (${regex.engine})`);
        return;
      }
      // The same value followed by a query, matched up to `end` as a path is.
      if (regex.matches(`${input}?q=1`, input.length) !== expected) {
        t.fail(`${escape(source)} on ${escape(input)}?q=1 up to ${input.length}: re2js says ${expected}`);
        return;
      }
      checked++;
      if (expected) matched++;
    }
  }
  t.ok(engines.irregexp > 500 && engines.literal > 50 && engines.re2 > 300, `every engine is exercised: ${JSON.stringify(engines)}`);
  t.ok(matched > checked / 20, `${matched} of ${checked} inputs match: both answers are exercised`);
});
