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
import type { Http2ServerRequest } from 'node:http2';

type DispatchController = Dispatcher.DispatchController;
import { formatErrorBody, type HttpErrorCode } from '../errors.ts';
import type { CompiledFilters, CompiledResilience, CompiledVersion } from '../table/index.ts';
import { NO_ENDPOINT, type Endpoint, type EndpointSet } from './endpoints.ts';
import { buildClientHeaders, buildUpstreamHeaders, REQUEST_ID_HEADER, VERSION_HEADER } from './headers.ts';
import { applyHeaderEdits, editUpstreamHeaders, MAX_MIRROR_BODY, mirrorHeaders, sendMirror, sendRedirect, upstreamPathOf } from './route-filters.ts';
import { classifyUpstreamError, type UpstreamFailure } from './upstream-errors.ts';
import { grpcStatusForHttp, GrpcStatus, headersFromList, isGrpcRequest, NO_GRPC_STATUS, parseGrpcTimeout, readGrpcStatus, respondTrailersOnly, sendGrpcError } from './grpc.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';
import type { VersionGuard } from './version-guard.ts';
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
  /** The endpoint the request went to last (NO_ENDPOINT when it was shed or none was live). */
  readonly endpoint: Endpoint;
  /** The version that answered when the request failed over from `version`; null when it did not. */
  readonly failedOverTo: CompiledVersion | null;
  /** Retries the request took. */
  readonly retries: number;
  /** Why each retry happened (connect, reset, timeout or the status); null when there was none. */
  readonly retryReasons: readonly string[] | null;
  /** Request body bytes read from the client; counted only once an observer asked (StartingExchange.countBytesIn), else 0. */
  readonly bytesIn: number;
  /** Response body bytes handed to the client (upstream body, or veer's error body); a client that went away may not have read them all. */
  readonly bytesOut: number;
  /** The call's grpc-status for a gRPC request (the upstream's, or veer's own error); NO_GRPC_STATUS (-1) otherwise. */
  readonly grpcStatus: number;
}

/** An exchange as observers see it when it starts. */
export interface StartingExchange {
  readonly req: IncomingMessage;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
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
  /** Called exactly once when the exchange ends, however it ends (retries and failover are on the exchange). */
  onExchangeEnd(exchange: FinishedExchange): void;
}

/** Aborts a try whose answer (a 5xx the service retries on) is not relayed but retried. */
class RetryStatusError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`the upstream answered ${status}`);
    this.status = status;
  }
}

/** Methods a retry may repeat (RFC 9110 9.2.2), as the contract lists them. */
function isIdempotent(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE';
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

/** True when the request has a body to stream (RFC 9112 6.3; an HTTP/2 request has one unless its HEADERS ended the stream). */
function hasBody(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 2) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Writes a JSON error response unless the head has already gone out; returns
 * the body's length in bytes (0 when none went out). A gRPC request gets the
 * error as a gRPC status instead (grpc.ts).
 */
export function sendError(res: ServerResponse, status: number, code: HttpErrorCode, message: string): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const req = res.req as IncomingMessage | undefined;
  const requestId = req?.headers[REQUEST_ID_HEADER];
  if (typeof requestId === 'string') res.setHeader(REQUEST_ID_HEADER, requestId);
  if (req !== undefined && req.httpVersionMajor === 2 && isGrpcRequest(req)) {
    sendGrpcError(res, grpcStatusForHttp(status), code, message);
    return 0;
  }
  const body = formatErrorBody(code, message, typeof requestId === 'string' ? requestId : undefined);
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

/** Adds the upstream's trailers to an HTTP/2 response, connection-specific fields left out. */
function relayTrailers(res: ServerResponse, trailers: IncomingHttpHeaders): void {
  let kept: Record<string, string | string[]> | null = null;
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a || HOP_BY_HOP_TRAILERS.has(name)) continue;
    (kept ??= {})[name] = value;
  }
  if (kept !== null) res.addTrailers(kept);
}

const HOP_BY_HOP_TRAILERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

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
  endpoint: Endpoint;
  readonly observer: ExchangeObserver | null;
  /** Set for a service with `resilience`: then tries can be retried or failed over. */
  readonly resilience: CompiledResilience | null;
  readonly upstreams: UpstreamRegistry | null;
  readonly guard: VersionGuard | null;
  /** The version whose endpoints the current try goes to (`version`, or its failover). */
  target: CompiledVersion;
  set: EndpointSet | null = null;
  failedOverTo: CompiledVersion | null = null;
  /** Why the request left its version (counted as that version's error whatever the failover answered). */
  failoverCause: UpstreamFailure | null = null;
  retries = 0;
  retryReasons: string[] | null = null;
  /** Whether this exchange counts in its version's requests in flight (maxInFlight). */
  holdsSlot = false;
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
  /** gRPC over HTTP/2: the outcome is grpc-status, and grpc-timeout is the call's deadline. */
  readonly grpc: boolean;
  grpcStatus = NO_GRPC_STATUS;
  /** The head of a gRPC trailers-only answer, held until the upstream's end (see onResponseStart). */
  pendingHead: string[] | null = null;
  deadline: NodeJS.Timeout | null = null;
  connection: ConnectionExchanges | null = null;
  prevOnConnection: WatchedExchange | null = null;
  nextOnConnection: WatchedExchange | null = null;
  /** The request body when veer read it whole first (to mirror it); null: streamed from `req`. */
  body: Buffer | null = null;
  /** Resumes the upstream once the client has drained (made on the first backpressure only). */
  #onDrain: (() => void) | null = null;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    version: CompiledVersion,
    endpoint: Endpoint,
    observer: ExchangeObserver | null,
    startedAt: number,
    upstreams: UpstreamRegistry | null = null,
  ) {
    this.req = req;
    this.res = res;
    this.version = version;
    this.target = version;
    this.endpoint = endpoint;
    this.observer = observer;
    this.startedAt = startedAt;
    const resilience = upstreams === null ? null : version.service.resilience;
    this.resilience = resilience;
    this.upstreams = resilience === null ? null : upstreams;
    this.guard = resilience === null ? null : upstreams!.guardOf(version);
    this.grpc = req.httpVersionMajor === 2 && isGrpcRequest(req);
    // The call's gRPC deadline, or the rule's request timeout: whichever comes first.
    let deadlineMs = this.grpc ? parseGrpcTimeout(req.headers['grpc-timeout']) : 0;
    const routeMs = version.filters?.requestTimeoutMs ?? null;
    if (routeMs !== null && (deadlineMs <= 0 || routeMs < deadlineMs)) deadlineMs = routeMs;
    if (deadlineMs > 0) this.deadline = setTimeout(() => this.deadlineExceeded(), deadlineMs);
    observer?.onExchangeStart?.(version, this);
    // An HTTP/2 request's own stream: `req.socket` stands for the whole connection there.
    watchClientConnection(req.httpVersionMajor === 2 ? (req as unknown as Http2ServerRequest).stream : req.socket, this);
  }

  /**
   * A client that sends its body slower than one chunk per `ms` (1 byte a
   * second, forever) would hold an upstream connection as long as it likes:
   * like nginx's client_body_timeout, the request is then answered 408 and
   * closed, and its upstream request aborted. Requests without a body pay nothing.
   */
  watchBody(ms: number): void {
    const req = this.req;
    if (req.complete || !hasBody(req)) return;
    req.setTimeout(ms, () => {
      if (this.finished || req.complete) return;
      this.controller?.abort(new ClientClosedError());
      this.res.shouldKeepAlive = false;
      if (this.res.headersSent) {
        this.res.destroy();
        this.finish(this.status, null);
      } else {
        this.answerError(408, BODY_TIMEOUT, true);
      }
      req.destroy();
    });
    // Once the body is in, the connection's idle timers are Node's own again.
    req.once('end', () => req.socket?.setTimeout(0));
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

  /**
   * The gRPC deadline passed before the call ended: the upstream request is
   * aborted and the client told DEADLINE_EXCEEDED, as a trailers-only answer
   * or, once the upstream's head went out, in the trailers (as Envoy does).
   */
  deadlineExceeded(): void {
    this.deadline = null;
    if (this.finished || this.ended) return;
    this.controller?.abort(new ClientClosedError());
    if (!this.grpc) {
      // A rule's `timeouts.request`: 504 before the head went out, a cut response after.
      if (this.status === 0) this.answerError(504, ROUTE_TIMEOUT);
      else {
        this.res.destroy();
        this.finish(this.status, ROUTE_TIMEOUT);
      }
      return;
    }
    if (this.status === 0) {
      this.answerError(504, GRPC_DEADLINE);
      return;
    }
    if (this.pendingHead !== null) {
      const head = headersFromList(this.pendingHead);
      this.pendingHead = null;
      respondTrailersOnly(this.res, this.status, { ...head, 'grpc-status': String(GrpcStatus.DEADLINE_EXCEEDED), 'grpc-message': 'deadline exceeded (grpc-timeout)' });
      this.grpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
      this.finish(this.status, GRPC_DEADLINE);
      return;
    }
    this.res.addTrailers({ 'grpc-status': String(GrpcStatus.DEADLINE_EXCEEDED), 'grpc-message': 'deadline exceeded (grpc-timeout)' });
    this.res.end();
    this.grpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
    this.finish(this.status, GRPC_DEADLINE);
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

  onResponseStart(controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200 || this.finished) return;
    if (this.set !== null) {
      this.set.report(this.endpoint, statusCode >= 500);
      if (this.resilience!.retries?.statuses.has(statusCode) === true && this.#mayRetry('status')) {
        controller.abort(new RetryStatusError(statusCode));
        return;
      }
    }
    this.status = statusCode;
    const res = this.res;
    // An answer before the whole request body was read (an early 401 or 413): undici stops
    // sending the body and destroys the request stream, so the rest of it is never read off
    // the client connection and a next request on it would hang. Close it after this answer.
    if (!this.req.complete) res.shouldKeepAlive = false;
    const expose = this.version.service.exposeVersionHeader ? this.target.name : null;
    this.bodyLeft = bodyLengthOf(headers);
    const clientHeaders = buildClientHeaders(headers, expose, this.req.headers[REQUEST_ID_HEADER]);
    const edits = this.version.filters?.responseHeaders ?? null;
    if (edits !== null) applyHeaderEdits(clientHeaders, edits);
    if (this.grpc) {
      // A trailers-only answer carries the call's status in its head; it must reach the client as
      // one HEADERS frame that ends the stream, so its head waits for the end (or a body, if any).
      this.grpcStatus = readGrpcStatus(headers);
      if (this.grpcStatus !== NO_GRPC_STATUS) {
        this.pendingHead = clientHeaders;
        return;
      }
    }
    // HTTP/2 has no reason phrase (RFC 9113 8.3.2); Node warns when given one.
    res.writeHead(statusCode, this.req.httpVersionMajor === 2 ? undefined : statusMessage || undefined, clientHeaders);
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.finished || this.ended || this.status === 0) return;
    if (this.pendingHead !== null) {
      this.res.writeHead(this.status, this.pendingHead);
      this.pendingHead = null;
    }
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

  onResponseEnd(_controller: DispatchController, trailers: IncomingHttpHeaders | null): void {
    if (this.finished || this.status === 0) return;
    if (this.pendingHead !== null) {
      respondTrailersOnly(this.res, this.status, headersFromList(this.pendingHead));
      this.pendingHead = null;
      this.finish(this.status, null);
      return;
    }
    if (!this.ended) {
      // Trailers (gRPC's grpc-status) reach an HTTP/2 client; HTTP/1.1 responses are relayed without them.
      if (trailers !== null && this.req.httpVersionMajor === 2) {
        relayTrailers(this.res, trailers);
        if (this.grpc) {
          const status = readGrpcStatus(trailers);
          if (status !== NO_GRPC_STATUS) this.grpcStatus = status;
        }
      }
      this.res.end();
    }
    this.finish(this.status, null);
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    if (this.finished) return;
    if (err instanceof ClientClosedError) return;
    if (err instanceof RetryStatusError) {
      this.#retry(String(err.status));
      return;
    }
    const failure = classifyUpstreamError(err);
    if (this.set !== null && !this.res.headersSent) {
      // Nothing reached the client yet: another try, or another version, may still answer.
      this.set.report(this.endpoint, true);
      if (this.#mayRetry(failure.kind)) {
        this.#retry(failure.kind);
        return;
      }
      if (failure.kind === 'connect' && this.#failover(failure)) return;
    }
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
    this.answerError(failure.code === 'upstream_timeout' ? 504 : 502, failure);
  }

  /**
   * Answers the client with veer's own error (nothing of the upstream's went
   * out) and ends the exchange; `failure` is recorded unless `shed` (veer
   * refused the request: no upstream failed).
   */
  answerError(status: number, failure: UpstreamFailure, shed = false): void {
    // Same as an early answer: an unread rest of the body would wedge the connection.
    if (!this.req.complete) this.res.shouldKeepAlive = false;
    // Which version failed is what an operator watching a canary needs to know.
    if (this.version.service.exposeVersionHeader) this.res.setHeader(VERSION_HEADER, this.target.name);
    this.bytesOut = sendError(this.res, status, failure.code, failure.message);
    if (this.grpc) {
      // The client got HTTP 200 and the error as a gRPC status (sendError).
      this.grpcStatus = grpcStatusForHttp(status);
      this.finish(200, shed ? null : failure);
      return;
    }
    this.finish(status, shed ? null : failure);
  }

  /** Sends the request to the next endpoint of `target` (a service with `resilience`). */
  dispatchTry(): void {
    const set = this.upstreams!.endpointsOf(this.target.upstream);
    const endpoint = this.set === set ? set.pickAfter(this.endpoint) : set.pick();
    this.set = set;
    if (endpoint === null) {
      // Every endpoint is ejected: no try at all, straight to the failover version.
      if (!this.#failover(NO_LIVE_ENDPOINT)) this.answerError(503, NO_LIVE_ENDPOINT);
      return;
    }
    this.endpoint = endpoint;
    this.status = 0;
    this.controller = null;
    const timeouts = this.target.service.timeouts;
    const filters = this.version.filters;
    endpoint.dispatcher.dispatch(
      {
        path: upstreamPathOf(this.req, filters),
        method: this.req.method ?? 'GET',
        headers: upstreamHeadersOf(this.req, this.target.name, filters),
        body: this.body ?? (hasBody(this.req) ? this.req : null),
        headersTimeout: filters?.backendTimeoutMs ?? this.resilience!.retries?.perTryTimeoutMs ?? timeouts.responseMs,
        bodyTimeout: timeouts.responseMs,
      },
      this,
    );
  }

  /**
   * Whether a failed try may go again: the service retries on this reason,
   * tries are left, the method is idempotent, the body was not streamed (none,
   * or a connect failure: nothing was sent), and the budget allows.
   */
  #mayRetry(reason: UpstreamFailure['kind'] | 'status'): boolean {
    const retries = this.resilience!.retries;
    if (retries === null || this.retries >= retries.attempts || this.failedOverTo !== null || !isIdempotent(this.req.method)) return false;
    if (reason === 'connect' ? !retries.onConnect : reason === 'reset' ? !retries.onReset : reason === 'timeout' ? !retries.onTimeout : reason !== 'status') return false;
    if (reason !== 'connect' && hasBody(this.req)) return false;
    return this.guard!.takeRetry(performance.now(), retries.budget);
  }

  #retry(reason: string): void {
    this.retries++;
    (this.retryReasons ??= []).push(reason);
    this.dispatchTry();
  }

  /** Sends the request to the version's failover, when it has one and has not failed over already. */
  #failover(cause: UpstreamFailure): boolean {
    const to = this.failedOverTo === null ? this.resilience!.failover[this.version.index] : null;
    if (to === null || to === undefined) return false;
    this.failedOverTo = to;
    this.failoverCause = cause;
    this.target = to;
    this.dispatchTry();
    return true;
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  get requestComplete(): boolean {
    return this.req.complete;
  }

  finish(status: number, failure: UpstreamFailure | null): void {
    this.finished = true;
    if (this.deadline !== null) {
      clearTimeout(this.deadline);
      this.deadline = null;
    }
    this.status = status;
    // A request that failed over is an error of the version it was meant for, whatever the failover answered.
    this.failure = failure ?? this.failoverCause;
    if (this.holdsSlot) {
      this.holdsSlot = false;
      this.guard!.inFlight--;
    }
    unwatchClientConnection(this);
    this.observer?.onExchangeEnd(this);
  }
}

/** A failure that carries nothing of its exchange: one frozen object for every exchange it ends. */
const fixedFailure = (code: UpstreamFailure['code'], kind: UpstreamFailure['kind'], message: string): UpstreamFailure => Object.freeze({ code, kind, message });

/** The failure of a version none of whose endpoints is live. */
const NO_LIVE_ENDPOINT = fixedFailure('no_healthy_upstream', 'connect', 'every endpoint of the version is out of rotation, and there is no failover version');
const GRPC_DEADLINE = fixedFailure('upstream_timeout', 'timeout', 'the call passed its gRPC deadline (grpc-timeout) before the upstream answered');
const BODY_TIMEOUT = fixedFailure('request_timeout', 'other', 'the request body stalled: nothing arrived for too long');
const OVERLOADED = fixedFailure('overloaded', 'overload', 'too many requests in flight for this version (resilience.maxInFlight)');
const ROUTE_TIMEOUT = fixedFailure('upstream_timeout', 'timeout', "the response did not come within the rule's timeouts.request");

/** The upstream headers, with a rule's request-side edits. */
function upstreamHeadersOf(req: IncomingMessage, versionName: string, filters: CompiledFilters | null): string[] {
  const list = buildUpstreamHeaders(req, versionName);
  return filters === null ? list : editUpstreamHeaders(list, filters);
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
  const filters = version.filters;
  if (filters !== null) {
    if (filters.redirect !== null) {
      sendRedirect(req, res, filters.redirect);
      return;
    }
    if (filters.mirror !== null && filters.mirror.percent > Math.random() * 100) {
      mirrorThenForward(upstreams, req, res, version, observer, startedAt, filters.mirror.version);
      return;
    }
  }
  forwardToUpstream(upstreams, req, res, version, observer, startedAt, null);
}

/** The upstream exchange of a request whose redirect and mirror were dealt with; `body`: read already (a mirrored request's). */
function forwardToUpstream(
  upstreams: UpstreamRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  version: CompiledVersion,
  observer: ExchangeObserver | null,
  startedAt: number,
  body: Buffer | null,
): void {
  const filters = version.filters;
  if (version.service.resilience !== null) {
    const exchange = new ProxyExchange(req, res, version, NO_ENDPOINT, observer, startedAt, upstreams);
    exchange.body = body;
    forwardResilient(exchange, upstreams);
    return;
  }
  const endpoint = upstreams.endpointsOf(version.upstream).pick();
  if (endpoint === null) {
    // Health checks took every endpoint out, and without `resilience` there is no failover.
    new ProxyExchange(req, res, version, NO_ENDPOINT, observer, startedAt).answerError(503, NO_LIVE_ENDPOINT);
    return;
  }
  const timeouts = version.service.timeouts;
  const exchange = new ProxyExchange(req, res, version, endpoint, observer, startedAt);
  exchange.watchBody(upstreams.clientBodyTimeoutMs);
  endpoint.dispatcher.dispatch(
    {
      path: filters === null ? (req.url ?? '/') : upstreamPathOf(req, filters),
      method: req.method ?? 'GET',
      headers: upstreamHeadersOf(req, version.name, filters),
      body: body ?? (hasBody(req) ? req : null),
      headersTimeout: filters?.backendTimeoutMs ?? timeouts.responseMs,
      bodyTimeout: timeouts.responseMs,
    },
    exchange,
  );
}

/** A service with `resilience`: shed over maxInFlight, then tries with retries and failover. */
function forwardResilient(exchange: ProxyExchange, upstreams: UpstreamRegistry): void {
  const guard = exchange.guard!;
  const limit = exchange.resilience!.maxInFlight;
  if (limit > 0 && guard.inFlight >= limit) {
    // Shed at once: a queue here would only make every request late. Counted as the version's
    // `overload` error: its users got a 503, whatever the cause (as Envoy counts overflows).
    exchange.answerError(503, OVERLOADED);
    return;
  }
  guard.inFlight++;
  exchange.holdsSlot = true;
  exchange.watchBody(upstreams.clientBodyTimeoutMs);
  guard.noteRequest(exchange.startedAt);
  exchange.dispatchTry();
}

/**
 * A request whose rule mirrors it: the copy goes out first, fire and forget.
 * A body is copied only when sized and at most MAX_MIRROR_BODY: it is read
 * whole, then both requests carry it; a larger or chunked body is not
 * copied (counted `skipped`) and the real request streams as usual.
 */
function mirrorThenForward(
  upstreams: UpstreamRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  version: CompiledVersion,
  observer: ExchangeObserver | null,
  startedAt: number,
  mirror: CompiledVersion,
): void {
  const count = upstreams.countMirror;
  const filters = version.filters;
  const copy = (body: Buffer | null) => sendMirror(upstreams, req, mirrorHeaders(upstreamHeadersOf(req, mirror.name, filters), mirror.name), upstreamPathOf(req, filters), mirror, body, count);
  if (!hasBody(req)) {
    copy(null);
    forwardToUpstream(upstreams, req, res, version, observer, startedAt, null);
    return;
  }
  const length = Number(req.headers['content-length']);
  if (!(length <= MAX_MIRROR_BODY) || req.headers['transfer-encoding'] !== undefined) {
    count(mirror, 'skipped');
    forwardToUpstream(upstreams, req, res, version, observer, startedAt, null);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.once('end', () => {
    const body = Buffer.concat(chunks);
    copy(body);
    forwardToUpstream(upstreams, req, res, version, observer, startedAt, body);
  });
  // A client that goes away mid-body: nothing is sent anywhere.
  req.once('error', () => count(mirror, 'skipped'));
}
