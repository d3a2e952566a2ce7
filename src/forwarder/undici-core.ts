// undici's Pool, Dispatcher base class and error classes, required from
// their own modules. The package's index also loads fetch, WebSocket,
// EventSource, the caches and the mocks, none of which the forwarder uses:
// 15 MB and 70 ms at start.
// test/forwarder/undici-core.test.ts checks that these are the very classes
// the index exports, so an undici upgrade that moves them fails there.

import { createRequire } from 'node:module';
import type { Dispatcher as UndiciDispatcher, Pool as UndiciPool, errors as UndiciErrors } from 'undici';

const requireUndici = createRequire(import.meta.url);

export const Pool = requireUndici('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
export type Pool = UndiciPool;
export const errors = requireUndici('undici/lib/core/errors.js') as typeof UndiciErrors;
/** The base class of undici's dispatchers: http2-upstream.ts extends it, so its dispatcher is an undici Dispatcher to the rest of the forwarder. */
export const Dispatcher = requireUndici('undici/lib/dispatcher/dispatcher.js') as typeof UndiciDispatcher;
export type Dispatcher = UndiciDispatcher;
// The index also gives every dispatcher its request(), stream(), pipeline(), upgrade() and
// connect() methods (mirrors and health checks call request()); done here as the index does,
// so they are there whether or not anything in the process loads the index.
Object.assign(Dispatcher.prototype, requireUndici('undici/lib/api/index.js'));
