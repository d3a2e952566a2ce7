// Where RE2's meaning and JS's differ (`.`, \s, code points, line
// separators), a whole-value regex answers as RE2 does, whichever engine
// runs it (table/regex.ts).

import { RE2JS } from 're2js';
import t from 'tap';
import { WholeRegex } from '../../src/table/regex.ts';

/** A value in a test message, ASCII only (U+2028 would break TAP's lines). */
const show = (value: string) => JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('hand-picked values answer as RE2', async (t) => {
  const cases: [string, string[]][] = [
    ['/items/[0-9]+/r7', ['/items/42/r7', '/items/4x2/r7', '/items//r7', '/items/42/r70', '/items/42/r7/', '']],
    ['gold|silver', ['gold', 'silver', 'goldsilver', 'Gold', '', 'gol']],
    ['/api/v[0-9]+/.*', ['/api/v1/', '/api/v12/users/7', '/api/v/', '/api/v1', '/api/v1/a\nb']],
    ['[^a]b', ['bb', 'ab', '\nb', '\u0100b', '\u{1f600}b']],
    ['.x', ['\nx', '\rx', '\u2028x', 'ax', '\u0100x', '\u{1f600}x']],
    ['\\s', [' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', 'x']],
    ['\\w+', ['abc_9', 'a-b', '\u00e9', '']],
    ['a{0}b', ['b', 'ab']],
    ['x?', ['', 'x', 'xx']],
    ['[-a]+|[b-]', ['-a-', 'b', '-', 'c']],
    ['[\\]\\\\]+', [']\\', ']', 'x']],
  ];
  for (const [source, values] of cases) {
    const re2 = RE2JS.compile(source);
    const pattern = new WholeRegex(source, re2);
    for (const value of values) t.equal(pattern.matches(value, value.length), re2.matches(value), `${show(source)} on ${show(value)} (${pattern.engine})`);
  }
});
