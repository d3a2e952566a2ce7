// normalizeOriginForm case by case: what each kind of path becomes (the
// raw-bytes regressions are in request-path.test.ts and absolute-form.test.ts).

import t from 'tap';
import { normalizeOriginForm } from '../../src/dataplane/request-target.ts';

t.test('paths are normalised as nginx does; the query is left alone', async (t) => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/a/b?x=%2e%2e//y', '/a/b?x=%2e%2e//y'],
    ['/%41%7a%30%2D%2e%5F%7e', '/Az0-._~'],
    ['/%2f%5c%3f%23%25%20%e2%82%ac', '/%2F%5C%3F%23%25%20%E2%82%AC'],
    ['//a///b//', '/a/b/'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/b/../..', '/'],
    ['/a/../b/../c', '/c'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e%2e%2fb', '/a/..%2Fb'],
    ['/.hidden/..x/.../x..', '/.hidden/..x/.../x..'],
    ['/a/..?q', '/?q'],
    ['/%2541', '/%2541'],
  ];
  for (const [path, want] of cases) t.equal(normalizeOriginForm(path), want, `${path} -> ${want}`);
});

t.test('a path without % // or /. is returned as the same string', async (t) => {
  for (const path of ['/', '/api/v1/orders/12345', '/a.b/c..d?e=//f/./g%zz', '/x_y~z/-1']) t.equal(normalizeOriginForm(path), path, path);
});

t.test('climbing above the root and broken percent-encodings are refused', async (t) => {
  for (const path of ['/..', '/../', '/a/../..', '/%2e%2e', '/.%2E/x', '//..', '/a%', '/a%4', '/a%4g', '/%%41']) {
    const got = normalizeOriginForm(path);
    t.type(got, 'object', `${path}: refused`);
    t.match(got, { status: 400, code: 'bad_request' }, `${path}: 400 bad_request`);
  }
});
