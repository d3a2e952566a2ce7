// Whole-value patterns (src/table/regex.ts): RE2's answer every time, from
// V8's engine only where that is proved free of super-linear backtracking.

import { RE2JS } from 're2js';
import t from 'tap';
import { MatcherSpecError } from '../../src/table/matchers.ts';
import { compileWholePattern } from '../../src/table/regex.ts';
import { mulberry32 } from '../helpers/prng.ts';

const re2Answer = (source: string, value: string) => RE2JS.compile(source).matches(value);
/** A value in a test message, ASCII only (U+2028 would break TAP's lines). */
const show = (value: string) => JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('patterns in the subset, and safe, run on V8', async (t) => {
  for (const source of [
    '/items/[0-9]+/r7',
    'gold|silver',
    '/api/v[0-9]+/.*',
    '[a-z]{2,5}-[0-9]+',
    '/static/.*',
    '\\d+\\.\\d+',
    '(?:eu|us)-[a-z]+',
    '(eu|us)-west-[0-9]',
    '[^/]+/[0-9]*',
    'a\\x41[\\x30-\\x39]',
    '',
    '/orders/[0-9a-f]{8}',
  ]) {
    t.equal(compileWholePattern(source, 'value').engine, 'v8', source);
  }
});

t.test('patterns outside the subset, or that could backtrack, stay on re2js', async (t) => {
  for (const source of [
    '(a+)+b', // a quantified group
    '.*.*x', // two runs that can trade characters
    '(a|ab)*c',
    '[a-z]+[a-z0-9]*', // the run after may be empty
    '.*\\.png', // `.` can give back the `.`
    '(?i)abc', // flags
    '\\bword', // assertions
    'a{2,}?', // lazy
    '^/api$', // anchors inside
    '(?P<id>[0-9]+)', // named groups
    '\\pL+',
    '[[:alpha:]]+',
    'Ā+', // beyond latin1 in the pattern: left to RE2
    'x(a|b)(a|b)(a|b)(a|b)(a|b)', // 32 branches
    '(a[0-9]+)x', // a run at the end of a group
  ]) {
    t.equal(compileWholePattern(source, 'value').engine, 're2', source);
  }
});

t.test('a pattern RE2 rejects is invalid_regex, naming the field', async (t) => {
  for (const source of ['(', '[a-', 'a**', '(?<=x)y', '\\1']) {
    let thrown: unknown = null;
    try {
      compileWholePattern(source, 'value');
    } catch (err) {
      thrown = err;
    }
    t.ok(thrown instanceof MatcherSpecError && thrown.code === 'invalid_regex' && thrown.field === 'value', `${source}: ${(thrown as Error | null)?.message}`);
  }
});

t.test('the same answers as RE2 on hand-picked cases', async (t) => {
  const cases: [string, string[]][] = [
    ['/items/[0-9]+/r7', ['/items/42/r7', '/items/4x2/r7', '/items//r7', '/items/42/r70', '/items/42/r7/', '']],
    ['gold|silver', ['gold', 'silver', 'goldsilver', 'Gold', '', 'gol']],
    ['/api/v[0-9]+/.*', ['/api/v1/', '/api/v12/users/7', '/api/v/', '/api/v1', '/api/v1/a\nb']],
    ['[^a]b', ['bb', 'ab', '\nb', 'Āb', '😀b']],
    ['.x', ['\nx', '\rx', '\u2028x', 'ax', 'Āx', '😀x']],
    ['\\s', [' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', 'x']],
    ['\\w+', ['abc_9', 'a-b', 'é', '']],
    ['a{0}b', ['b', 'ab']],
    ['x?', ['', 'x', 'xx']],
    ['[-a]+|[b-]', ['-a-', 'b', '-', 'c']],
    ['[\\]\\\\]+', [']\\', ']', 'x']],
  ];
  for (const [source, values] of cases) {
    const pattern = compileWholePattern(source, 'value');
    for (const value of values) t.equal(pattern.test(value), re2Answer(source, value), `${show(source)} on ${show(value)} (${pattern.engine})`);
  }
});

/** A random pattern from the subset's constructs (and some outside it), over a small alphabet so matches happen. */
function randomPattern(random: () => number, depth = 0): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const atom = (): string =>
    depth < 2 && random() < 0.15
      ? `(${random() < 0.5 ? '?:' : ''}${randomPattern(random, depth + 1)})`
      : pick(['a', 'b', '/', '0', '.', '\\d', '\\w', '\\s', '[ab]', '[^a]', '[0-9]', '[a-c/]', '\\.', 'x', '\\x61']);
  const quantifier = (): string => pick(['', '', '', '*', '+', '?', '{2}', '{1,3}', '{0,}']);
  const sequence = (): string => Array.from({ length: 1 + Math.floor(random() * 4) }, () => atom() + quantifier()).join('');
  return Array.from({ length: random() < 0.7 ? 1 : 2 }, sequence).join('|');
}

function randomValue(random: () => number): string {
  const alphabet = ['a', 'b', '/', '0', '7', '.', 'x', ' ', '\n', 'Ā', 'c', '_'];
  return Array.from({ length: Math.floor(random() * 7) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
}

t.test('property: every generated pattern answers as RE2 on every generated value', async (t) => {
  const random = mulberry32(0x5eed);
  let compared = 0;
  let onV8 = 0;
  const mismatches: string[] = [];
  for (let p = 0; p < 1500; p++) {
    const source = randomPattern(random);
    let re2: RE2JS;
    try {
      re2 = RE2JS.compile(source);
    } catch {
      continue; // not RE2 syntax: compileWholePattern refuses it (tested above)
    }
    const pattern = compileWholePattern(source, 'value');
    if (pattern.engine === 'v8') onV8++;
    for (let v = 0; v < 40; v++) {
      const value = randomValue(random);
      compared++;
      if (pattern.test(value) !== re2.matches(value)) mismatches.push(`${show(source)} on ${show(value)}`);
    }
  }
  t.same(mismatches.slice(0, 10), [], `${compared} comparisons`);
  t.ok(onV8 > 300, `${onV8} patterns ran on V8`);
});

t.test('8 KiB adversarial values get their answer (no backtracking blow-up)', async (t) => {
  const long = 'a'.repeat(8192);
  const cases: [string, string, boolean][] = [
    ['[a-z]+[0-9]', long, false],
    ['(a|b)[a-z]*x', long, false],
    ['[^/]+/[0-9]*', `${long}x`, false],
    ['(a+)+b', long, false], // re2js
    ['.*.*x', long, false], // re2js
    ['[a-z]+', long, true],
  ];
  for (const [source, value, expected] of cases) t.equal(compileWholePattern(source, 'value').test(value), expected, source);
});
