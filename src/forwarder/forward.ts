// Sends a routed request to its version's upstream and streams the answer
// back. One ProxyExchange per request is the undici dispatch handler: no
// promise chain, no intermediate streams. Backpressure both ways:
//
//   client --req--> undici (reads req as the body stream, pauses it when the
//                    upstream socket is full)
//   client <--res-- ProxyExchange.onResponseData: res.write() === false
//                    -> controller.pause(), 'drain' -> controller.resume()

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

type DispatchController = Dispatcher.DispatchController;
import { formatErrorBody, type HttpErrorCode } from '../errors.ts';
import type { CompiledVersion } from '../table/index.ts';
import type { Endpoint } from './endpoints.ts';
import { buildClientHeaders, buildUpstreamHeaders, VERSION_HEADER } from './headers.ts';
import { classifyUpstreamError, type UpstreamFailure } from './upstream-errors.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';
import { unwatchClientConnection, watchClientConnection, type ConnectionExchanges, type WatchedExchange } from './client-connections.ts';

/** Status recorded for a client that went away before the response ended (as nginx does). */
export const CLIENT_CLOSED_STATUS = 499;

/** An exchange as observers see it when it ends; the forwarder's own object, so reporting allocates nothing. */
export interface FinishedExchange {
  readonly version: CompiledVersion;
  /** The status the client got (499 when it went away first). */
  readonly status: number;
  readonly failure: UpstreamFailure | null;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  readonly method: string;
  readonly req: IncomingMessage;
  /** The endpoint the request went to. */
  readonly endpoint: Endpoint;
  /** Request body bytes read from the client; counted only once an observer asked (StartingExchange.countBytesIn), else 0. */
  readonly bytesIn: number;
  /** Response body bytes handed to the client (upstream body, or veer's error body); a client that went away may not have read them all. */
  readonly bytesOut: number;
}

/** An exchange as observers see it when it starts. */
export interface StartingExchange {
  /**
   * Counts the request body into `bytesIn` from here on. Costs a 'data'
   * listener per request with a body, so only an observer that reports it
   * (the access log) asks, and the default chain pays nothing.
   */
  countBytesIn(): void;
}

/** What the data plane learns about each exchange (for metrics and logs). */
export interface ExchangeObserver {
  /** Called when the exchange starts, after routing. */
  onExchangeStart?(version: CompiledVersion, exchange: StartingExchange): void;
  /** Called exactly once when the exchange ends, however it ends. */
  onExchangeEnd(exchange: FinishedExchange): void;
}

/** An error raised to abort the upstream request when the client goes away. */
class ClientClosedError extends Error {
  readonly code = 'VEER_CLIENT_CLOSED';
  constructor() {
    super('client closed the connection');
  }
}

/** True when a response with this status, to this method, has no body (RFC 9110 6.4.1). */
function hasNoBody(status: number, method: string | undefined): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200) || method === 'HEAD';
}

/** True when the request has a body to stream (RFC 9112 6.3). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Writes a JSON error response unless the head has already gone out; returns the body's length in bytes (0 when none went out). */
export function sendError(res: ServerResponse, status: number, code: HttpErrorCode, message: string): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const body = formatErrorBody(code, message);
  const length = Buffer.byteLength(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': length });
  res.end(body);
  return length;
}

// A last body chunk up to this size is handed to Node as a latin1 string
// (byte for byte the same): Node then sends head and body as one string in
// one write, instead of queueing the head and writev-ing both. Node writes
// strings up to 16 KiB from a stack buffer, head included.
const SINGLE_WRITE_MAX_BODY = 8 * 1024;

/** The Content-Length of a response as a number of bytes, or -1 when absent or not a plain number. */
function bodyLengthOf(headers: IncomingHttpHeaders): number {
  const value = headers['content-length'];
  if (typeof value !== 'string' || value.length === 0 || value.length > 15) return -1;
  const length = Number(value);
  return Number.isInteger(length) && length >= 0 ? length : -1;
}

class ProxyExchange implements WatchedExchange, FinishedExchange, StartingExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly version: CompiledVersion;
  readonly endpoint: Endpoint;
  readonly observer: ExchangeObserver | null;
  readonly startedAt: number;
  controller: DispatchController | null = null;
  status = 0;
  failure: UpstreamFailure | null = null;
  finished = false;
  /** Body bytes still to come by the upstream's Content-Length; -1 when it sent none. */
  bodyLeft = -1;
  /** Whether any body has been written to the client yet (the head goes out with the first). */
  bodyStarted = false;
  /** Whether res.end() was already called with the last chunk, before the upstream said it was done. */
  ended = false;
  bytesIn = 0;
  bytesOut = 0;
  connection: ConnectionExchanges | null = null;
  prevOnConnection: WatchedExchange | null = null;
  nextOnConnection: WatchedExchange | null = null;
  /** Resumes the upstream once the client has drained (made on the first backpressure only). */
  #onDrain: (() => void) | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, version: CompiledVersion, endpoint: Endpoint, observer: ExchangeObserver | null, startedAt: number) {
    this.req = req;
    this.res = res;
    this.version = version;
    this.endpoint = endpoint;
    this.observer = observer;
    this.startedAt = startedAt;
    observer?.onExchangeStart?.(version, this);
    watchClientConnection(req.socket, this);
  }

  countBytesIn(): void {
    const req = this.req;
    if (!hasBody(req)) return;
    // Why 'data' events, and why paused first:
    // - req.socket.bytesRead deltas would count other requests' bytes on a keep-alive or
    //   pipelined connection, and the head's; Content-Length is what the client promised, not
    //   what was read (an abort, an early answer), and chunked bodies have none.
    // - A 'data' listener on a stream that is not paused starts it flowing at once, and chunks
    //   read before undici attaches its own listener (once it has a connection) would never
    //   reach the upstream. Paused, nothing flows until undici resumes the body, and from then
    //   on every chunk reaches both listeners; undici's pause() for backpressure still holds.
    req.pause();
    req.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
    });
  }

  clientGone(): void {
    if (this.finished) return;
    this.finish(CLIENT_CLOSED_STATUS, null);
    this.controller?.abort(new ClientClosedError());
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.finished) controller.abort(new ClientClosedError());
  }

  onResponseStart(_controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200 || this.finished) return;
    this.status = statusCode;
    const res = this.res;
    // An answer before the whole request body was read (an early 401 or 413): undici stops
    // sending the body and destroys the request stream, so the rest of it is never read off
    // the client connection and a next request on it would hang. Close it after this answer.
    if (!this.req.complete) res.shouldKeepAlive = false;
    const expose = this.version.service.exposeVersionHeader ? this.version.name : null;
    this.bodyLeft = bodyLengthOf(headers);
    res.writeHead(statusCode, statusMessage || undefined, buildClientHeaders(headers, expose));
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.finished || this.ended) return;
    this.bytesOut += chunk.length;
    const res = this.res;
    // The chunk that completes a Content-Length body ends the response now: head, body and
    // end go to the socket in one write rather than a write now and an empty one at the end.
    if (chunk.length === this.bodyLeft) {
      this.ended = true;
      if (!this.bodyStarted && chunk.length <= SINGLE_WRITE_MAX_BODY) res.end(chunk.toString('latin1'), 'latin1');
      else res.end(chunk);
      return;
    }
    if (this.bodyLeft > 0) this.bodyLeft -= chunk.length;
    this.bodyStarted = true;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', (this.#onDrain ??= () => {
        if (!this.finished) this.controller?.resume();
      }));
    }
  }

  onResponseEnd(): void {
    if (this.finished) return;
    if (!this.ended) this.res.end();
    this.finish(this.status, null);
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    if (this.finished) return;
    if (err instanceof ClientClosedError) return;
    const failure = classifyUpstreamError(err);
    if (this.ended) {
      // The client already has the whole body; the upstream failed after sending it.
      this.finish(this.status, failure);
      return;
    }
    if (this.res.headersSent) {
      // A 204, a 304 or the answer to a HEAD has no body whatever its Content-Length says (RFC 9110
      // 6.4.1), but undici holds it to the length: that is the whole, valid response; relay it.
      if (hasNoBody(this.status, this.req.method) && err.name === 'ResponseContentLengthMismatchError') {
        this.res.end();
        this.finish(this.status, null);
        return;
      }
      // Failed after the head: the client must see the head and then a truncated body, not a hang and
      // not nothing (Node holds the head back until the first body write; send it first, as nginx does).
      if (!this.bodyStarted) this.res.flushHeaders();
      this.res.destroy(err);
      this.finish(this.status || 502, failure);
      return;
    }
    const status = failure.code === 'upstream_timeout' ? 504 : 502;
    // Same as an early answer: an unread rest of the body would wedge the connection.
    if (!this.req.complete) this.res.shouldKeepAlive = false;
    // Which version failed is what an operator watching a canary needs to know.
    if (this.version.service.exposeVersionHeader) this.res.setHeader(VERSION_HEADER, this.version.name);
    this.bytesOut = sendError(this.res, status, failure.code, failure.message);
    this.finish(status, failure);
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  get requestComplete(): boolean {
    return this.req.complete;
  }

  finish(status: number, failure: UpstreamFailure | null): void {
    this.finished = true;
    this.status = status;
    this.failure = failure;
    unwatchClientConnection(this);
    this.observer?.onExchangeEnd(this);
  }
}

/** Forwards `req` to an endpoint of `version` and streams the response into `res`. */
export function forwardRequest(
  upstreams: UpstreamRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  version: CompiledVersion,
  observer: ExchangeObserver | null,
  startedAt: number,
): void {
  const endpoint = upstreams.endpointsOf(version.upstream).pick();
  const timeouts = version.service.timeouts;
  const exchange = new ProxyExchange(req, res, version, endpoint, observer, startedAt);
  endpoint.dispatcher.dispatch(
    {
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers: buildUpstreamHeaders(req, version.name, 'http'),
      body: hasBody(req) ? req : null,
      headersTimeout: timeouts.responseMs,
      bodyTimeout: timeouts.responseMs,
    },
    exchange,
  );
}
