// The forwarder requires undici's Pool, Dispatcher and errors from their own modules, not
// the package index (src/forwarder/undici-core.ts says why). They must be the
// very classes the index exports: an undici upgrade that moves or copies them
// fails here, not in production with an `instanceof` that is never true.

import t from 'tap';
import * as undici from 'undici';
import { Dispatcher, errors, Pool } from '../../src/forwarder/undici-core.ts';

t.equal(Pool, undici.Pool, 'Pool is undici.Pool');
t.equal(errors, undici.errors, 'errors is undici.errors');
t.equal(Dispatcher, undici.Dispatcher, 'Dispatcher is undici.Dispatcher');
for (const name of ['HTTPParserError', 'ConnectTimeoutError', 'SocketError', 'RequestAbortedError', 'HeadersTimeoutError', 'BodyTimeoutError'] as const) {
  t.equal(typeof errors[name], 'function', `errors.${name}`);
}
