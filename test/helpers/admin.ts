// Talking to veer's admin API in tests, and driving traffic through the data plane.

import { request } from 'undici';

/** A JSON answer of the admin API. */
export interface AdminAnswer<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
}

/** Calls the admin API; `body` is sent as JSON unless it is a string (sent as is). */
export async function admin<T = Record<string, unknown>>(
  baseUrl: string,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<AdminAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await request(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.statusCode, body: parsed as T };
}

/** Sends `count` requests to the data plane and counts the answering version. */
export async function countVersions(url: string, count: number, concurrency = 10): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await request(url);
      await res.body.text();
      const v = String(res.headers['x-veer-version']);
      counts[v] = (counts[v] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

/** Polls `check` every `intervalMs` until it returns true; false after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Keeps `concurrency` request loops running against `url` until stopped;
 * counts answers by version and status.
 */
export function startLoad(url: string, concurrency = 8): { stop(): Promise<void>; counts: Record<string, number> } {
  let running = true;
  const counts: Record<string, number> = {};
  const loop = async () => {
    // Bounded: stops when asked, and at most 200000 requests per loop.
    for (let i = 0; running && i < 200_000; i++) {
      try {
        const res = await request(url);
        await res.body.text();
        const key = `${String(res.headers['x-veer-version'])} ${res.statusCode}`;
        counts[key] = (counts[key] ?? 0) + 1;
      } catch {
        counts.error = (counts.error ?? 0) + 1;
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    counts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
