// One request on an HTTP/2 upstream (http2-upstream.ts): its headers made
// fit for HTTP/2, its stream, its body piped in, and the response handed to
// the dispatch handler. The exchange is also the controller the handler holds:
// pause() and resume() stop and restart reading the stream (and so, by flow
// control, the upstream), abort() resets it.
//
//   dispatch ─> waiting on a connecting session ─> open: stream ─> 'response' ─> 'data'... ─> 'end'
//                                                               ╰──────── 'close' first: a reset
//
// Failures carry the codes upstream-errors.ts classifies (as undici's errors
// do): ECONNRESET for a stream reset or a connection lost after connect,
// UND_ERR_HEADERS_TIMEOUT and UND_ERR_BODY_TIMEOUT for the timeouts. A stream
// the upstream refuses (REFUSED_STREAM, as after a GOAWAY: it never processed
// it) goes again on another session when it has no body.

import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

type DispatchOptions = Dispatcher.DispatchOptions;
type DispatchHandler = Dispatcher.DispatchHandler;
type DispatchController = Dispatcher.DispatchController;

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = constants;

// Sending a refused stream again: at most this many times (each on a session opened since).
const MAX_REFUSED_RETRIES = 2;

// RFC 9113 8.2.2: connection-specific fields are malformed in HTTP/2 (Node refuses to send
// them), and TE may only be `trailers`. `host` becomes `:authority` (8.3.1).
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

/** What an exchange needs of the session it runs on (http2-upstream.ts's UpstreamSession). */
export interface ExchangeSession {
  readonly session: ClientHttp2Session;
  /** Takes no new streams. */
  draining: boolean;
  /** Exchanges that wait for the connection. */
  waiting: H2Exchange[];
  /** Why the connection failed, if it did. */
  readonly error: Error | null;
}

/** What an exchange needs of its upstream: another session when its own refused it, and word of its stream. */
export interface ExchangeHost {
  assign(exchange: H2Exchange): void;
  streamOpened(s: ExchangeSession): void;
  streamClosed(s: ExchangeSession): void;
}

/** A failure with a code classifyUpstreamError knows (the codes undici's errors carry). */
export class Http2UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

/** Request headers for HTTP/2: names lowercased, connection-specific fields left out, Host as :authority. */
export function toHttp2Headers(method: string, path: string, scheme: string, authority: string, headers: DispatchOptions['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':method': method, ':scheme': scheme, ':authority': authority, ':path': path };
  const add = (rawName: string, value: string | string[] | number | undefined) => {
    if (value === undefined) return;
    const name = rawName.toLowerCase();
    if (name === 'host') {
      out[':authority'] = String(value);
      return;
    }
    if (CONNECTION_SPECIFIC.has(name) || (name === 'te' && String(value).trim().toLowerCase() !== 'trailers')) return;
    const prior = out[name];
    if (prior === undefined) out[name] = value;
    else out[name] = [...(Array.isArray(prior) ? prior : [String(prior)]), ...(Array.isArray(value) ? value : [String(value)])];
  };
  if (headers == null) return out;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) add(headers[i] as string, headers[i + 1] as string);
  } else if (Symbol.iterator in headers) {
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) add(name, value);
  } else {
    for (const name in headers) add(name, (headers as IncomingHttpHeaders)[name]);
  }
  return out;
}

/** Response headers without the pseudo-headers (`:status`). */
function withoutPseudoHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) if (name.charCodeAt(0) !== 0x3a) out[name] = headers[name];
  return out;
}

/** True for a body the request streams from (an IncomingMessage, say). */
function isReadable(body: unknown): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';
}

/** One request on an HTTP/2 upstream: its stream, and the controller its handler holds. */
export class H2Exchange implements DispatchController {
  readonly #upstream: ExchangeHost;
  readonly #handler: DispatchHandler;
  readonly #headers: OutgoingHttpHeaders;
  readonly #body: Readable | Buffer | Uint8Array | string | null;
  readonly #headersTimeoutMs: number;
  readonly #bodyTimeoutMs: number;
  #stream: ClientHttp2Stream | null = null;
  #session: ExchangeSession | null = null;
  #responded = false;
  #trailers: IncomingHttpHeaders | null = null;
  /** The stream's 'error' (a reset's code, say), the cause of the failure 'close' reports. */
  #streamError: Error | null = null;
  #refusals = 0;
  #paused = false;
  #aborted = false;
  #reason: Error | null = null;
  /** The handler has been told how it ended (end or error), or the exchange was aborted. */
  done = false;

  constructor(upstream: ExchangeHost, opts: DispatchOptions, handler: DispatchHandler, scheme: string, authority: string) {
    this.#upstream = upstream;
    this.#handler = handler;
    this.#headers = toHttp2Headers(opts.method, opts.path, scheme, authority, opts.headers);
    const body = opts.body;
    this.#body = body == null ? null : isReadable(body) ? body : typeof body === 'string' || body instanceof Uint8Array ? body : null;
    this.#headersTimeoutMs = opts.headersTimeout ?? 300_000;
    this.#bodyTimeoutMs = opts.bodyTimeout ?? 300_000;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  pause(): void {
    this.#paused = true;
    this.#stream?.pause();
  }

  resume(): void {
    this.#paused = false;
    const stream = this.#stream;
    if (stream === null) return;
    // The body timeout counts from here again, as undici's does: a client reading slowly is not a stalled upstream.
    if (this.#responded && this.#bodyTimeoutMs > 0) stream.setTimeout(this.#bodyTimeoutMs);
    stream.resume();
  }

  abort(reason: Error): void {
    if (this.done) return;
    this.#aborted = true;
    this.#reason = reason;
    this.fail(reason);
  }

  /** Waits for `s` to connect (its 'connect' opens the stream). */
  wait(s: ExchangeSession): void {
    this.#session = s;
    s.waiting.push(this);
  }

  /** Opens the stream on a connected session and sends the body. */
  open(s: ExchangeSession): void {
    let stream: ClientHttp2Stream;
    try {
      stream = s.session.request(this.#headers, { endStream: this.#body === null });
    } catch (err) {
      // The session stopped taking streams (GOAWAY under way, stream ids used up): another one.
      const code = (err as { code?: string }).code;
      if ((code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_OUT_OF_STREAMS') && this.#refusals++ < MAX_REFUSED_RETRIES) {
        s.draining = true;
        this.#upstream.assign(this);
        return;
      }
      this.fail(err as Error);
      return;
    }
    this.#stream = stream;
    this.#session = s;
    this.#upstream.streamOpened(s);
    if (this.#headersTimeoutMs > 0) stream.setTimeout(this.#headersTimeoutMs);
    stream.on('response', (headers) => this.#onResponse(headers));
    stream.on('data', (chunk: Buffer) => {
      if (!this.done) this.#handler.onResponseData?.(this, chunk);
    });
    stream.on('trailers', (trailers) => {
      this.#trailers = trailers;
    });
    stream.on('end', () => this.#onEnd(stream));
    stream.on('timeout', () => this.#onTimeout());
    // 'error' is followed by 'close', which decides.
    stream.on('error', (err: Error) => {
      this.#streamError ??= err;
    });
    stream.on('close', () => this.#onClose(stream, s));
    if (this.#paused) stream.pause();
    const body = this.#body;
    if (body === null) return;
    if (isReadable(body)) {
      body.on('error', this.#onBodyError);
      body.pipe(stream);
    } else {
      stream.end(body);
    }
  }

  #onResponse(headers: IncomingHttpHeaders): void {
    if (this.done) return;
    this.#responded = true;
    const stream = this.#stream!;
    stream.setTimeout(this.#bodyTimeoutMs > 0 ? this.#bodyTimeoutMs : 0);
    this.#handler.onResponseStart?.(this, Number(headers[':status']), withoutPseudoHeaders(headers), '');
  }

  /**
   * The response's last byte. A stream the upstream reset mid-body also
   * ends (Node pushes the end when it closes), with its reset code set:
   * that is a truncated response, and 'close' reports it.
   */
  #onEnd(stream: ClientHttp2Stream): void {
    if (this.done || !this.#responded) return;
    const code = stream.rstCode;
    if (code !== undefined && code !== NGHTTP2_NO_ERROR) return;
    this.done = true;
    this.#detachBody();
    // The answer is whole; a body the upstream did not wait for is not sent on.
    if (!stream.writableFinished) stream.close(NGHTTP2_CANCEL);
    this.#handler.onResponseEnd?.(this, this.#trailers ?? {});
  }

  #onTimeout(): void {
    // While the handler holds the response back, silence is the client's, not the upstream's.
    if (this.done || (this.#responded && this.#paused)) return;
    const err = this.#responded
      ? new Http2UpstreamError('UND_ERR_BODY_TIMEOUT', `no response body from the upstream for ${this.#bodyTimeoutMs} ms`)
      : new Http2UpstreamError('UND_ERR_HEADERS_TIMEOUT', `no response from the upstream within ${this.#headersTimeoutMs} ms`);
    this.fail(err);
  }

  #onClose(stream: ClientHttp2Stream, s: ExchangeSession): void {
    this.#upstream.streamClosed(s);
    if (this.done) return;
    const code = stream.rstCode;
    // Refused: the upstream never processed it (RFC 9113 8.7), so it may go again, unless its body was read.
    if (code === NGHTTP2_REFUSED_STREAM && this.#body === null && !this.#responded && this.#refusals++ < MAX_REFUSED_RETRIES) {
      this.#stream = null;
      this.#session = null;
      s.draining = true;
      this.#upstream.assign(this);
      return;
    }
    const cause = this.#streamError ?? s.error ?? undefined;
    const why = code !== undefined && code !== NGHTTP2_NO_ERROR ? `the upstream reset the stream (HTTP/2 error ${code})` : 'the upstream closed the stream before the response ended';
    this.fail(new Http2UpstreamError('ECONNRESET', why, cause));
  }

  readonly #onBodyError = (err: Error): void => {
    this.fail(err);
  };

  #detachBody(): void {
    const body = this.#body;
    if (body === null || !isReadable(body)) return;
    body.off('error', this.#onBodyError);
    if (this.#stream !== null) body.unpipe(this.#stream);
  }

  /** Ends the exchange with an error: the stream is reset (CANCEL) and the handler told. */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.#detachBody();
    const stream = this.#stream;
    if (stream !== null) {
      if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    } else if (this.#session !== null) {
      // Still waiting for its connection: it leaves the queue.
      const waiting = this.#session.waiting;
      const index = waiting.indexOf(this);
      if (index !== -1) waiting.splice(index, 1);
    }
    this.#handler.onResponseError?.(this, err);
  }
}
