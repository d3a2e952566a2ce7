// A tiny upstream for the demo: answers every request with JSON naming its
// version, the path, and the headers veer added.

import { createServer, type Server } from 'node:http';

/** Starts a demo upstream for `version` on 127.0.0.1:`port`. */
export function startDemoUpstream(version: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({
      version,
      method: req.method,
      path: req.url,
      forwardedFor: req.headers['x-forwarded-for'] ?? null,
      veerVersion: req.headers['x-veer-version'] ?? null,
      user: req.headers['x-user-id'] ?? null,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(`${body}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
