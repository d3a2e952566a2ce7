// HTTP/2 to one upstream origin, on node:http2, behind the dispatch(opts,
// handler) interface of undici's Pool: forward.ts, the retries, the health
// checks and the endpoint sets use it as they use a Pool. `protocol: h2` is
// TLS with ALPN h2 only (an upstream without h2 fails the handshake);
// `protocol: h2c` is cleartext HTTP/2 with prior knowledge.
//
// Why not undici's own HTTP/2 (`allowH2`)? In undici 7.30 it gives a
// handler of the current API empty trailers (gRPC's grpc-status is lost),
// fails every running stream on a graceful GOAWAY (an upstream's rolling
// restart would be a burst of 502s), treats a stream the upstream cancels
// mid-body as a complete response, queues a request with a streamed body
// behind every running stream of its connection, and opens one connection
// per request that arrives while the first one connects.
//
//   Http2Upstream ──> sessions: [ UpstreamSession, ... ]   one while it has room for
//        │                          │                      another stream, more beyond
//        │                          │                      the peer's MAX_CONCURRENT_STREAMS
//        │                          ├── connecting: exchanges wait in `waiting`
//        │                          ├── ready: each exchange is a stream
//        │                          └── draining (GOAWAY, idle, closing): running streams
//        │                              finish, new ones go to another session
//        └── dispatch(opts, handler) ──> H2Exchange (http2-exchange.ts): the stream and the
//                                        handler, and the controller the handler holds
//
// A connect that fails ends the exchanges waiting on it with the socket's
// error (ECONNREFUSED, the TLS codes) or UND_ERR_CONNECT_TIMEOUT: nothing of
// them was sent, so forward.ts may retry or fail them over as connect failures.

import { connect, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { H2Exchange, Http2UpstreamError, type ExchangeHost, type ExchangeSession } from './http2-exchange.ts';
import { Dispatcher } from './undici-core.ts';

type DispatchOptions = UndiciDispatcher.DispatchOptions;
type DispatchHandler = UndiciDispatcher.DispatchHandler;

/** How to reach the origin. */
export interface Http2UpstreamOptions {
  readonly connectTimeoutMs: number;
  /** A session without streams for this long is closed (GOAWAY). */
  readonly idleTimeoutMs: number;
  /** Sessions open at once at most; beyond, streams queue in the least busy one. */
  readonly maxSessions: number;
  /** TLS of an https:// origin (`protocol: h2`); unused for http:// (h2c). */
  readonly tls: Pick<SecureClientSessionOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized'>;
}

// Streams a session takes before its peer's SETTINGS say how many (undici's default too).
const DEFAULT_MAX_STREAMS = 100;
// Flow-control windows: Node's 64 KiB per stream would hold a download to 64 KiB per round
// trip. Larger windows mean more buffered per paused stream, so not much larger (undici's).
const STREAM_WINDOW = 256 * 1024;
const SESSION_WINDOW = 512 * 1024;

/** One HTTP/2 connection to the origin. */
class UpstreamSession implements ExchangeSession {
  readonly session: ClientHttp2Session;
  connected = false;
  /** Takes no new streams: the peer sent GOAWAY, it went idle, or the upstream is closing. */
  draining = false;
  /** Streams open on it. */
  active = 0;
  /** Exchanges that wait for the connection. */
  waiting: H2Exchange[] = [];
  /** Why the connection failed (its 'error'), kept for the exchanges still on it. */
  error: Error | null = null;
  connectTimer: NodeJS.Timeout | null = null;

  constructor(session: ClientHttp2Session) {
    this.session = session;
  }

  /** Streams it may run: the peer's SETTINGS_MAX_CONCURRENT_STREAMS once known. */
  get capacity(): number {
    return this.connected ? (this.session.remoteSettings.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS) : DEFAULT_MAX_STREAMS;
  }

  get load(): number {
    return this.active + this.waiting.length;
  }
}

/** HTTP/2 (h2 or h2c) to one origin, as an undici Dispatcher. */
export class Http2Upstream extends Dispatcher implements ExchangeHost {
  readonly #origin: string;
  readonly #authority: string;
  readonly #scheme: 'http' | 'https';
  readonly #options: Http2UpstreamOptions;
  readonly #sessions: UpstreamSession[] = [];
  #closed = false;
  #destroyed = false;
  #onEmpty: (() => void) | null = null;

  constructor(origin: string, options: Http2UpstreamOptions) {
    super();
    const url = new URL(origin);
    this.#origin = url.origin;
    this.#authority = url.host;
    this.#scheme = url.protocol === 'https:' ? 'https' : 'http';
    this.#options = options;
  }

  /** True once close() or destroy() was called (as undici's `closed`). */
  get closed(): boolean {
    return this.#closed;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Sessions open or connecting. */
  get sessionCount(): number {
    return this.#sessions.length;
  }

  override dispatch(opts: DispatchOptions, handler: DispatchHandler): boolean {
    const exchange = new H2Exchange(this, opts, handler, this.#scheme, this.#authority);
    handler.onRequestStart?.(exchange, null);
    if (exchange.done) return true;
    if (this.#closed) {
      exchange.fail(new Http2UpstreamError('UND_ERR_CLOSED', 'the upstream dispatcher is closed'));
      return true;
    }
    if (opts.upgrade != null || opts.method === 'CONNECT') {
      exchange.fail(new Http2UpstreamError('UND_ERR_NOT_SUPPORTED', 'upgrades (WebSocket) and CONNECT are not forwarded to an HTTP/2 upstream'));
      return true;
    }
    this.assign(exchange);
    return true;
  }

  /** Puts an exchange on a session with room: one that is there, or a new one. */
  assign(exchange: H2Exchange): void {
    let best: UpstreamSession | null = null;
    for (const s of this.#sessions) {
      if (s.draining) continue;
      if (s.load < s.capacity) {
        best = s;
        break;
      }
      if (best === null || s.load < best.load) best = s;
    }
    if (best === null || (best.load >= best.capacity && this.#sessions.length < this.#options.maxSessions)) best = this.#open();
    if (best.connected) exchange.open(best);
    else exchange.wait(best);
  }

  /** A stream started: the session holds the process open while it has streams. */
  streamOpened(s: UpstreamSession): void {
    if (s.active++ === 0) s.session.ref();
  }

  /** A stream ended: the session may go idle. */
  streamClosed(s: UpstreamSession): void {
    s.active--;
    if (s.active === 0 && s.waiting.length === 0 && !s.session.destroyed) s.session.unref();
  }

  #open(): UpstreamSession {
    const tls = this.#scheme === 'https' ? { ...this.#options.tls, ALPNProtocols: ['h2'] } : {};
    const session = connect(this.#origin, { ...tls, settings: { enablePush: false, initialWindowSize: STREAM_WINDOW } });
    const s = new UpstreamSession(session);
    this.#sessions.push(s);
    s.connectTimer = setTimeout(() => {
      s.connectTimer = null;
      session.destroy(new Http2UpstreamError('UND_ERR_CONNECT_TIMEOUT', `connecting to ${this.#origin} timed out (${this.#options.connectTimeoutMs} ms)`));
    }, this.#options.connectTimeoutMs);
    session.once('connect', () => this.#connected(s));
    session.on('error', (err: Error) => {
      s.error ??= err;
    });
    // GOAWAY: streams up to its last stream id finish; later ones are refused (and sent again).
    session.on('goaway', () => {
      s.draining = true;
    });
    session.once('close', () => this.#gone(s));
    // Idle for idleTimeoutMs (no frame either way) without a stream: closed with GOAWAY.
    session.setTimeout(this.#options.idleTimeoutMs, () => {
      if (s.active === 0 && s.waiting.length === 0) {
        s.draining = true;
        session.close();
      }
    });
    return s;
  }

  #connected(s: UpstreamSession): void {
    if (s.connectTimer !== null) clearTimeout(s.connectTimer);
    s.connectTimer = null;
    s.connected = true;
    try {
      s.session.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // A larger window is an optimisation only.
    }
    const waiting = s.waiting;
    s.waiting = [];
    for (const exchange of waiting) if (!exchange.done) exchange.open(s);
    if (s.active === 0) s.session.unref();
    if (this.#closed) s.session.close();
  }

  /** A session closed: its waiting exchanges fail with its error (they never reached the upstream). */
  #gone(s: UpstreamSession): void {
    if (s.connectTimer !== null) clearTimeout(s.connectTimer);
    const index = this.#sessions.indexOf(s);
    if (index !== -1) this.#sessions.splice(index, 1);
    const waiting = s.waiting;
    s.waiting = [];
    const err = s.error ?? new Http2UpstreamError('ECONNRESET', `the connection to ${this.#origin} closed before it was ready`);
    for (const exchange of waiting) exchange.fail(err);
    if (this.#sessions.length === 0 && this.#onEmpty !== null) {
      this.#onEmpty();
      this.#onEmpty = null;
    }
  }

  /** Resolves once every session has closed. */
  #whenEmpty(): Promise<void> {
    if (this.#sessions.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.#onEmpty;
      this.#onEmpty = () => {
        previous?.();
        resolve();
      };
    });
  }

  /** Takes no new requests; resolves when the running ones have finished and every session is closed. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    for (const s of this.#sessions) {
      s.draining = true;
      // A connecting session sends what waits on it first (#connected closes it then).
      if (s.connected) s.session.close();
    }
    const done = this.#whenEmpty();
    if (callback === undefined) return done;
    void done.then(callback);
  }

  /** Resets every stream and closes every session now. */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const err = typeof errOrCallback === 'function' || errOrCallback == null ? new Http2UpstreamError('UND_ERR_DESTROYED', 'the upstream dispatcher was destroyed') : errOrCallback;
    this.#closed = true;
    this.#destroyed = true;
    for (const s of this.#sessions) {
      s.error ??= err;
      s.session.destroy();
    }
    const done = this.#whenEmpty();
    if (cb === undefined) return done;
    void done.then(cb);
  }
}
