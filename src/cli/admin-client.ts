// The CLI's client for the admin API: JSON over undici, the bearer token,
// `x-veer-actor: cli:USER` for the history, and one error type carrying the
// API's code (or `unreachable` when veer cannot be reached at all).

import { userInfo } from 'node:os';
import { request } from 'undici';

/** Where the admin API is and how to authenticate. */
export interface AdminTarget {
  readonly url: string;
  readonly token?: string;
}

/** The default admin URL when neither --admin nor $VEER_ADMIN_URL is given. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9901';

/** A failed admin call: the API's error code and message, or a transport failure. */
export class AdminCallError extends Error {
  readonly code: string;
  readonly status: number | null;
  constructor(code: string, message: string, status: number | null) {
    super(message);
    this.name = 'AdminCallError';
    this.code = code;
    this.status = status;
  }
}

function cliActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return `cli:${user.replace(/[^\w.@-]/g, '_').slice(0, 40)}`;
}

/** Calls the admin API and returns the parsed JSON answer, or throws AdminCallError. */
export async function callAdmin<T>(target: AdminTarget, method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const base = target.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { accept: 'application/json', 'x-veer-actor': cliActor() };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: 15_000, bodyTimeout: 15_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new AdminCallError('unreachable', `cannot reach the veer admin API at ${base} (${e.code ?? e.message}); is veer running? set --admin or $VEER_ADMIN_URL`, null);
  }
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AdminCallError('bad_response', `${method} ${path}: HTTP ${res.statusCode} with a body that is not JSON`, res.statusCode);
  }
  if (res.statusCode >= 400) {
    const error = (parsed as { error?: { code?: string; message?: string } }).error;
    const hint = res.statusCode === 401 ? ' (give --token or $VEER_ADMIN_TOKEN)' : '';
    throw new AdminCallError(error?.code ?? `http_${res.statusCode}`, `${error?.message ?? `HTTP ${res.statusCode}`}${hint}`, res.statusCode);
  }
  return parsed as T;
}
