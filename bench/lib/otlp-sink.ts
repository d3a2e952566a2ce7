// An OTLP/HTTP collector for the veer-tracing case: takes every POST and
// answers 200, counting spans, so veer's exporter runs as against a healthy
// collector. Unref'd: it never keeps the bench alive.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Spans received by every sink of this process. */
export let spansReceived = 0;

/** Starts a sink on 127.0.0.1; resolves with its traces URL. */
export async function startOtlpSink(): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      spansReceived += body.split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
}
