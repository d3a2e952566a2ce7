// Calls to veer's admin API. The admin token is asked once, kept in this
// tab's sessionStorage (never in a URL, gone when the tab closes) and sent as
// a Bearer header; an answer that is not 2xx becomes an ApiError carrying the
// API's own code and message, so the page can show why it was refused.

const TOKEN_KEY = 'veer-admin-token';

/** An admin API refusal: HTTP status, the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The token in use ('' when none was given). */
export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/** Keeps `token` for this tab. */
export function rememberToken(token) {
  if (token === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** Who the history names for changes made here. */
const ACTOR = 'dashboard';

/** Calls `method path` with an optional JSON body; resolves to the parsed JSON answer or throws ApiError. */
export async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = currentToken();
  if (token !== '') headers.authorization = 'Bearer ' + token;
  if (method !== 'GET') headers['x-veer-actor'] = ACTOR;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'unreachable', 'cannot reach veer: ' + (err && err.message ? err.message : String(err)));
  }
  const text = await res.text();
  let json = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON: reported below by status
  }
  if (!res.ok) {
    const error = json && json.error;
    throw new ApiError(res.status, error && error.code ? error.code : 'http_' + res.status, error && error.message ? error.message : method + ' ' + path + ': HTTP ' + res.status);
  }
  return json;
}

/** GET `path`, or null when it answers 404 (an endpoint this veer does not have). */
export async function getOptional(path) {
  try {
    return await call('GET', path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}
