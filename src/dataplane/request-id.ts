// x-request-id: kept when the client (or a load balancer in front) sent a
// usable one, as ingress-nginx does, else made here; passed to the upstream,
// returned to the client, and written in the access log and in veer's error
// bodies, so one id follows a request through every log.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { REQUEST_ID_HEADER } from '../forwarder/index.ts';

/** Printable ASCII without spaces or commas (a comma means the header came twice), at most 128 characters. */
const USABLE_ID = /^[\x21-\x2b\x2d-\x7e]{1,128}$/;

/**
 * Sets a request header where both paths to the upstream read it: the raw
 * list (HTTP/1.1, which keeps the client's order and case) and the parsed
 * object (HTTP/2, and everything else that reads headers). Other copies in
 * the raw list go.
 */
export function replaceRequestHeader(req: IncomingMessage, name: string, value: string): void {
  req.headers[name] = value;
  if (req.httpVersionMajor === 2) return;
  const raw = req.rawHeaders;
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== name.length || raw[i]!.toLowerCase() !== name) continue;
    if (found) {
      raw.splice(i, 2);
      i -= 2;
    } else {
      raw[i + 1] = value;
      found = true;
    }
  }
  if (!found) raw.push(name, value);
}

/** HOT PATH. The request's id: the client's when usable, else a new UUID v4 put on the request. */
export function ensureRequestId(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  if (typeof given === 'string' && USABLE_ID.test(given)) return given;
  const id = randomUUID();
  if (given === undefined && req.httpVersionMajor !== 2) {
    // The common case: nothing to replace, so no scan of the raw list.
    req.headers[REQUEST_ID_HEADER] = id;
    req.rawHeaders.push(REQUEST_ID_HEADER, id);
  } else {
    replaceRequestHeader(req, REQUEST_ID_HEADER, id);
  }
  return id;
}
