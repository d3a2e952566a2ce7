import t from 'tap';
import { normalizeHostPattern, normalizeRequestHost } from '../../src/table/index.ts';

t.test('normalizeHostPattern', async (t) => {
  t.equal(normalizeHostPattern('shop.example.com'), 'shop.example.com');
  t.equal(normalizeHostPattern('Shop.Example.COM.'), 'shop.example.com', 'lowercased, trailing dot dropped');
  t.equal(normalizeHostPattern(' shop.example.com '), 'shop.example.com');
  t.equal(normalizeHostPattern('*.Example.com'), '*.example.com', 'a wildcard is kept');
  t.equal(normalizeHostPattern('localhost'), 'localhost');
  t.equal(normalizeHostPattern('127.0.0.1'), '127.0.0.1');
  t.equal(normalizeHostPattern('[::1]'), '[::1]');
  t.equal(normalizeHostPattern('[2001:DB8::1]'), '[2001:db8::1]');
  t.equal(normalizeHostPattern('my_host-1.internal'), 'my_host-1.internal');
  for (const bad of ['a b', 'a.*.com', '*', '*.', '**.a.com', 'a..b', '-a.com', 'a-.com', 'shop.example.com/x', 'shop.example.com:8080', '::1', '[zz]', '']) {
    t.equal(normalizeHostPattern(bad), null, JSON.stringify(bad));
  }
});

t.test('normalizeRequestHost', async (t) => {
  t.equal(normalizeRequestHost('shop.example.com'), 'shop.example.com');
  t.equal(normalizeRequestHost('shop.example.com:8080'), 'shop.example.com', 'port dropped');
  t.equal(normalizeRequestHost('SHOP.Example.Com'), 'shop.example.com', 'lowercased');
  t.equal(normalizeRequestHost('shop.example.com.'), 'shop.example.com', 'trailing dot dropped');
  t.equal(normalizeRequestHost('Shop.Example.Com.:443'), 'shop.example.com', 'all three');
  t.equal(normalizeRequestHost('[::1]:8080'), '[::1]', 'IPv6 with a port');
  t.equal(normalizeRequestHost('[::1]'), '[::1]');
  t.equal(normalizeRequestHost('[2001:DB8::1]:80'), '[2001:db8::1]');
  t.equal(normalizeRequestHost('127.0.0.1:80'), '127.0.0.1');
  const same = 'already.normal';
  t.equal(normalizeRequestHost(same), same, 'unchanged input comes back as is');
});
