// Path prefixes match whole segments, as Kubernetes' `pathType: Prefix` and
// Gateway API's `PathPrefix` do: `/api` matches `/api`, `/api/` and
// `/api/x` (and `/api?q`), never `/apix`. A trailing `/` on a prefix is
// ignored: `/api/` is `/api`.

/** The prefix as compared: without trailing slashes (`/` stays `/`). */
export function normalizePathPrefix(prefix: string): string {
  let end = prefix.length;
  while (end > 1 && prefix.charCodeAt(end - 1) === SLASH) end--;
  return end === prefix.length ? prefix : prefix.slice(0, end);
}

const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;

/**
 * HOT PATH. Whether the request target (path and query) starts at `length`
 * a new segment, or ends there: the end of the path, `/`, `?` or `#`.
 * A prefix of length 1 (the root) always does.
 */
export function endsSegmentAt(url: string, length: number): boolean {
  if (length <= 1 || url.length === length) return true;
  const c = url.charCodeAt(length);
  return c === SLASH || c === QUESTION || c === HASH;
}

/** HOT PATH. Whether `url` lies under the (normalised) `prefix`, segment by segment. */
export function hasPathPrefix(url: string, prefix: string): boolean {
  return url.startsWith(prefix) && endsSegmentAt(url, prefix.length);
}

/** HOT PATH. Where the path of a request target ends: at its first `?` or `#`, else its length. */
export function pathEndOf(url: string): number {
  // indexOf's scan beats a charCodeAt loop past a dozen characters, and costs about the same below.
  const query = url.indexOf('?');
  if (query === -1) {
    const hash = url.indexOf('#');
    return hash === -1 ? url.length : hash;
  }
  // A `#` before the `?` ends the path first (the `?` is then in the fragment).
  return url.lastIndexOf('#', query) === -1 ? query : url.indexOf('#');
}
