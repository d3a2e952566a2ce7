// bare-undici.ts over TLS: the floor for a Node proxy on undici behind an
// HTTPS listener. `https.createServer` with the bench's certificate (TLS 1.2
// and 1.3 with Node's defaults, as veer's listener) and one Pool.dispatch per
// request with a raw dispatch handler; only hop-by-hop headers dropped.
//
// Run as a child: `VEER_BENCH_TLS_CERT=FILE VEER_BENCH_TLS_KEY=FILE
// node bench/lib/bare-undici-https.ts --upstream http://127.0.0.1:N` (the
// files by environment: runProxyChild reads only --upstream).

import { readFileSync } from 'node:fs';
import { startBareUndiciProxy } from './bare-undici.ts';
import { runProxyChild } from './child.ts';

if (import.meta.main) {
  const tls = { cert: readFileSync(process.env.VEER_BENCH_TLS_CERT ?? ''), key: readFileSync(process.env.VEER_BENCH_TLS_KEY ?? '') };
  await runProxyChild((upstream) => startBareUndiciProxy(upstream, 0, tls));
}
