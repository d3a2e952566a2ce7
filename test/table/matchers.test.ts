import t from 'tap';
import { createMatcher, createValueReader, MAX_REGEX_INPUT, type RequestView } from '../../src/table/index.ts';

const withCookie = (cookie: string): RequestView => ({ headers: { cookie }, url: '/' });
const withUrl = (url: string | undefined): RequestView => ({ headers: {}, url });

t.test('header reader', async (t) => {
  const r = createValueReader('header', 'X-User-Id');
  t.equal(r.kind, 'header');
  t.equal(r.name, 'x-user-id', 'header names are lowercased (Node lowercases incoming ones)');
  t.equal(r.read({ headers: { 'x-user-id': '42' } }), '42');
  t.equal(r.read({ headers: { 'x-user-id': ['a', 'b'] } }), 'a', 'first of a repeated header');
  t.equal(r.read({ headers: { 'x-user-id': '' } }), '');
  t.equal(r.read({ headers: {} }), undefined);
});

t.test('cookie reader', async (t) => {
  const r = createValueReader('cookie', 'uid');
  t.equal(r.read(withCookie('uid=42')), '42');
  t.equal(r.read(withCookie('a=1; uid=42; b=2')), '42', 'among several cookies');
  t.equal(r.read(withCookie('a=1;uid=42;b=2')), '42', 'no spaces after ;');
  t.equal(r.read(withCookie('a=1;   uid=42  ; b=2')), '42', 'spaces around the pair');
  t.equal(r.read(withCookie('uid="42"')), '42', 'quoted value');
  t.equal(r.read(withCookie('uid="a b"; x=1')), 'a b');
  t.equal(r.read(withCookie('uid=a%20b%3Bc')), 'a b;c', 'percent-encoded');
  t.equal(r.read(withCookie('uid=a+b')), 'a+b', 'a + stays a + in a cookie');
  t.equal(r.read(withCookie('uid=%zz')), '%zz', 'a malformed escape is kept as sent');
  t.equal(r.read(withCookie('xuid=1; uidx=2; uid=3')), '3', 'names are matched whole');
  t.equal(r.read(withCookie('uid=1; uid=2')), '1', 'first of repeated cookies');
  t.equal(r.read(withCookie('uid=')), '');
  t.equal(r.read(withCookie('a=1; uid')), '', 'a bare name reads as empty');
  t.equal(r.read(withCookie('UID=1')), undefined, 'names are case-sensitive');
  t.equal(r.read(withCookie('a=uid=1')), undefined, 'not inside another value');
  t.equal(r.read(withCookie('')), undefined);
  t.equal(r.read({ headers: {} }), undefined, 'no cookie header');
});

t.test('query reader', async (t) => {
  const r = createValueReader('query', 'uid');
  t.equal(r.read(withUrl('/p?uid=42')), '42');
  t.equal(r.read(withUrl('/p?a=1&uid=42&b=2')), '42');
  t.equal(r.read(withUrl('/p?uid=a+b')), 'a b', '+ is a space');
  t.equal(r.read(withUrl('/p?uid=%41%2B%20')), 'A+ ', '%xx decoded');
  t.equal(r.read(withUrl('/p?uid=%zz')), '%zz', 'a malformed escape is kept as sent');
  t.equal(r.read(withUrl('/p?uid')), '', 'no value');
  t.equal(r.read(withUrl('/p?a&uid&b')), '');
  t.equal(r.read(withUrl('/p?uid=')), '');
  t.equal(r.read(withUrl('/p?uid=1&uid=2')), '1', 'repeated key: first wins');
  t.equal(r.read(withUrl('/p?xuid=1&uidx=2')), undefined, 'names are matched whole');
  t.equal(r.read(withUrl('/p?a=1#uid=2')), undefined, 'the fragment is not the query');
  t.equal(r.read(withUrl('/p?uid=1#frag')), '1', 'the fragment is cut off');
  t.equal(r.read(withUrl('/p#x?uid=1')), undefined, 'a ? after # is in the fragment');
  t.equal(r.read(withUrl('/p')), undefined, 'no query');
  t.equal(r.read(withUrl('/p?')), undefined, 'empty query');
  t.equal(r.read(withUrl(undefined)), undefined, 'no url');
});

t.test('value, regex and presence matchers', async (t) => {
  const exact = createMatcher('header', { name: 'x-canary', value: 'always' });
  t.ok(exact.match({ headers: { 'x-canary': 'always' } }));
  t.notOk(exact.match({ headers: { 'x-canary': 'Always' } }), 'values are case-sensitive');
  t.notOk(exact.match({ headers: { 'x-canary': 'always ' } }));
  t.notOk(exact.match({ headers: {} }));
  t.equal(exact.description, 'header x-canary = "always"');

  const empty = createMatcher('query', { name: 'q', value: '' });
  t.ok(empty.match(withUrl('/?q')), 'an empty value matches a bare key');
  t.notOk(empty.match(withUrl('/')), 'but not a missing one');

  const regex = createMatcher('cookie', { name: 'tier', regex: '^(gold|platinum)$' });
  t.ok(regex.match(withCookie('tier=gold')));
  t.ok(regex.match(withCookie('tier=platinum')));
  t.notOk(regex.match(withCookie('tier=golden')));
  t.notOk(regex.match(withCookie('other=gold')), 'absent never matches a regex');
  t.equal(regex.description, 'cookie tier ~ /^(gold|platinum)$/');
  const unanchored = createMatcher('header', { name: 'user-agent', regex: 'Mobile' });
  t.ok(unanchored.match({ headers: { 'user-agent': 'Foo Mobile Safari' } }), 'a regex finds, like RegExp.test');
  const long = createMatcher('header', { name: 'x', regex: 'a' });
  t.ok(long.match({ headers: { x: 'a'.repeat(MAX_REGEX_INPUT) } }));
  t.notOk(long.match({ headers: { x: 'a'.repeat(MAX_REGEX_INPUT + 1) } }), 'values past MAX_REGEX_INPUT never match');

  const present = createMatcher('cookie', { name: 'beta', present: true });
  const absent = createMatcher('cookie', { name: 'beta', present: false });
  for (const [cookie, has] of [
    ['beta=1', true],
    ['beta=', true],
    ['beta', true],
    ['alpha=1', false],
  ] as const) {
    t.equal(present.match(withCookie(cookie)), has, `present: ${cookie}`);
    t.equal(absent.match(withCookie(cookie)), !has, `absent: ${cookie}`);
  }
  t.equal(absent.match({ headers: {} }), true, 'no cookie header at all');
  t.equal(present.description, 'cookie beta is present');
  t.equal(absent.description, 'cookie beta is absent');
});

t.test('matcher specs are checked once, at build time', async (t) => {
  t.throws(() => createMatcher('header', { name: 'x' }), { code: 'invalid_matcher', field: undefined, message: /needs one of value, regex or present/ });
  t.throws(() => createMatcher('header', { name: 'x', value: 'a', regex: 'a' }), { code: 'invalid_matcher', message: /only one of .*value, regex/ });
  t.throws(() => createMatcher('query', { name: 'x', value: 'a', present: false }), { code: 'invalid_matcher' }, 'present: false counts as given');
  t.throws(() => createMatcher('header', { name: 'x', regex: '(' }), { code: 'invalid_regex', field: 'regex' });
  t.throws(() => createMatcher('header', { name: 'x', regex: '[a-' }), { code: 'invalid_regex', field: 'regex' });
  for (const notRe2 of ['a(?=b)', 'a(?!b)', '(?<=a)b', '(a)\\1']) {
    t.throws(() => createMatcher('header', { name: 'x', regex: notRe2 }), { code: 'invalid_regex', field: 'regex', message: /RE2 syntax/ }, notRe2);
  }
  // Patterns that backtrack catastrophically in V8 are fine on RE2's linear-time engine.
  for (const nested of ['(a+)+$', '(a*)*b', '^(\\w+\\s?)*$', '(x+x+)+y', '(?:a+)+', '(?P<n>a+)*', '(a+?)+', '([a-z]+)*?$']) {
    t.doesNotThrow(() => createMatcher('header', { name: 'x', regex: nested }), nested);
  }
  for (const safe of ['^v[0-9]+$', '^(canary|beta)$', 'a+b+', '^[a-f0-9]{8}-', '\\(?a+', '[?(]+x']) {
    t.doesNotThrow(() => createMatcher('header', { name: 'x', regex: safe }), safe);
  }
  // Everyday patterns with optional groups.
  for (const optional of ['^v2(\\.[0-9]+)?$', '^([a-z]+-)?v[0-9]+$', '^(beta|canary)(-[0-9]+)?$']) {
    t.doesNotThrow(() => createMatcher('header', { name: 'x', regex: optional }), optional);
  }
});

t.test('regression: patterns that passed the old safety check and stalled the process run in linear time', async (t) => {
  // One request with a 3000-character header once stalled every request for 5.8 s.
  const evil = `${'a'.repeat(2999)}!`;
  for (const [pattern, input, expected] of [
    ['^.*.*.*=.*$', evil, false],
    ['\\s*\\s*\\s*$', `${' '.repeat(2999)}x`, true],
    ['(a|a)*$', evil, true],
    ['^(a+)+$', evil, false],
    ['^(a|aa)+$', 'a'.repeat(3000), true],
  ] as const) {
    const matcher = createMatcher('header', { name: 'x-evil', regex: pattern });
    const started = performance.now();
    let got = false;
    for (let i = 0; i < 20; i++) got = matcher.match({ headers: { 'x-evil': input } });
    const ms = performance.now() - started;
    t.equal(got, expected, `${pattern}: the right answer`);
    // A bound against exponential time, not a benchmark: 20 linear scans of 3000 characters take milliseconds.
    t.ok(ms < 2000, `${pattern}: 20 matches over 3000 characters in ${ms.toFixed(1)} ms`);
  }
});
