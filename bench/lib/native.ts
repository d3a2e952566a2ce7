// nginx and haproxy as reference points: what a C proxy does on the same
// machine with the same upstream. Both are optional; when a binary is
// missing its row is skipped (and the run says so). Each is configured the
// way one would run it in front of a keep-alive upstream: one worker/thread
// (veer serves from one process), upstream keep-alive, no access log.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort, spawnChild, type BenchChild } from './child.ts';

const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin', '/sbin'];

/** The path of an installed binary, or null; native rows run only when it exists. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  return null;
}

/** apt-get installs whatever of nginx-light, haproxy and wrk is missing (for `--with-native`); returns what failed. */
export function installNative(log: (s: string) => void): string[] {
  const wanted: Record<string, string> = { nginx: 'nginx-light', haproxy: 'haproxy', wrk: 'wrk' };
  const missing = Object.keys(wanted).filter((bin) => findBinary(bin) === null);
  if (missing.length === 0) return [];
  log(`installing ${missing.map((b) => wanted[b]).join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
  if (update.status === 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', ...missing.map((b) => wanted[b]!)], { stdio: 'ignore', env, timeout: 600_000 });
  }
  return missing.filter((bin) => findBinary(bin) === null);
}

/** An HTTPS listener for nginx (bench/tls.ts): the PEM files, and which way this nginx turns HTTP/2 on. */
export interface NginxTls {
  readonly cert: string;
  readonly key: string;
  /** `http2 on;` (nginx >= 1.25.1), or the older `listen ... ssl http2`. */
  readonly http2Directive: boolean;
}

/** nginx's version as [major, minor, patch] (`nginx -v`), or null when it does not say. */
export function nginxVersion(binary: string): [number, number, number] | null {
  const out = spawnSync(binary, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${out.stderr ?? ''}${out.stdout ?? ''}`);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** Whether this nginx takes `http2 on;` (1.25.1 and later). */
export function hasHttp2Directive(version: readonly [number, number, number] | null): boolean {
  if (version === null) return false;
  const [major, minor, patch] = version;
  return major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
}

/**
 * nginx.conf for one worker in front of `upstreamPort`, listening on `port`; with `tls`, the
 * listener is HTTPS (TLS 1.2 and 1.3, session tickets on as in Node) with HTTP/2 by ALPN.
 */
export function buildNginxConfig(dir: string, port: number, upstreamPort: number, tls: NginxTls | null = null): string {
  const listen =
    tls === null
      ? `listen 127.0.0.1:${port};`
      : `listen 127.0.0.1:${port} ssl${tls.http2Directive ? '' : ' http2'};${tls.http2Directive ? '\n    http2 on;' : ''}
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;`;
  return `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    ${listen}
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering on;
    }
  }
}
`;
}

/** haproxy.cfg for one thread in front of `upstreamPort`, listening on `port`. */
export function buildHaproxyConfig(port: number, upstreamPort: number): string {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  option forwardfor
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend bench
  bind 127.0.0.1:${port}
  default_backend app
backend app
  http-reuse always
  server s1 127.0.0.1:${upstreamPort}
`;
}

/** Starts nginx (master + one worker) on a free port (HTTPS with `tls`); CPU is read over the process tree. */
export async function startNginx(binary: string, upstreamPort: number, tls: NginxTls | null = null, name = 'nginx'): Promise<BenchChild> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-bench-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const port = await findFreePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, buildNginxConfig(dir, port, upstreamPort, tls));
  return spawnChild(name, binary, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { fixedPort: port });
}

/** Starts haproxy in the foreground (-db) on a free port. */
export async function startHaproxy(binary: string, upstreamPort: number): Promise<BenchChild> {
  const dir = mkdtempSync(join(tmpdir(), 'veer-bench-haproxy-'));
  const port = await findFreePort();
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(conf, buildHaproxyConfig(port, upstreamPort));
  return spawnChild('haproxy', binary, ['-db', '-f', conf], { fixedPort: port });
}
