import t from 'tap';
import { isLoopbackHost, parseDuration, parseListenAddress } from '../../src/config/index.ts';

t.test('parseDuration', async (t) => {
  t.equal(parseDuration('0ms'), 0);
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('2s'), 2000);
  t.equal(parseDuration('30s'), 30_000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration('1m'), 60_000);
  t.equal(parseDuration('1h'), 3_600_000);
  t.equal(parseDuration('0.25ms'), 0, 'rounds to whole milliseconds');
  for (const bad of ['5', '5 s', '-1s', '1d', '1.s', 's', '', '1S', '1m30s']) {
    t.throws(() => parseDuration(bad), /not a duration/, JSON.stringify(bad));
  }
});

t.test('parseListenAddress', async (t) => {
  t.same(parseListenAddress('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080 });
  t.same(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListenAddress('localhost:9901'), { host: 'localhost', port: 9901 });
  t.same(parseListenAddress('[::1]:8080'), { host: '::1', port: 8080 });
  t.same(parseListenAddress('[::]:80'), { host: '::', port: 80 });
  t.same(parseListenAddress(8080), { host: '0.0.0.0', port: 8080 }, 'a bare port number: all interfaces');
  t.same(parseListenAddress('8080'), { host: '0.0.0.0', port: 8080 }, 'a bare port string');
  t.same(parseListenAddress('h:65535'), { host: 'h', port: 65535 });
  for (const bad of ['h:65536', '99999', ':8080', 'host', '::1:8080', 'a b:80', 'h:-1', 'h:80x', '']) {
    t.equal(parseListenAddress(bad), null, JSON.stringify(bad));
  }
});

t.test('isLoopbackHost', async (t) => {
  for (const host of ['127.0.0.1', '127.255.0.9', 'localhost', '::1']) t.ok(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '127.0.0.1.example.com', 'localhost.evil.com']) {
    t.notOk(isLoopbackHost(host), host);
  }
});
