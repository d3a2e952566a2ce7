// The data-plane HTTP server: accept, route on the current table, forward,
// and drain on shutdown. Each request reads the table reference once, so a
// reload never changes the table a request is already using.

import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { CertificateStore } from './certificates.ts';
import { acceptPriorKnowledge, createHttp2Front, type Http2Front } from './http2.ts';
import { ensureRequestId } from './request-id.ts';
import { Tracer, type TracingOptions } from './tracing.ts';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatErrorBody, type HttpErrorCode } from '../errors.ts';
import type { Http2ServerResponse } from 'node:http2';
import {
  extendedConnectTunnelClient,
  forwardRequest,
  forwardTunnel,
  rejectUpgrade,
  sendError,
  upgradeTunnelClient,
  UpstreamRegistry,
  whenExchangesEnd,
  type ExchangeObserver,
  type FinishedExchange,
  type TunnelClient,
} from '../forwarder/index.ts';
import type { Logger } from '../log/index.ts';
import { routeRequest, type RandomSource } from '../router/index.ts';
import type { RouteTable } from '../table/index.ts';
import { AccessLog, type AccessLogDestination } from './access-log.ts';
import {
  AFTER_CLOSE,
  checkTransferCoding,
  closeAfterResponse,
  FAULTY_FRAMING,
  isAfterClose,
  isClosing,
  refuseLaterRequests,
  serveThenClose,
  UNSUPPORTED_TRANSFER_CODING,
} from './request-framing.ts';
import { isValidHost, normalizeOriginForm, refusal, takeAbsoluteForm, type RequestRefusal } from './request-target.ts';

/** What the data plane needs from the rest of veer. */
export interface DataPlaneOptions {
  /** Returns the current table; called once per request. */
  readonly table: () => RouteTable;
  readonly log: Logger;
  readonly observer?: ExchangeObserver | null;
  /**
   * Where to write one JSON access line per exchange (`log.access`): a file descriptor (1 is
   * stdout) or a stream. Null or absent: no access log, and not one more step per request.
   */
  readonly accessLog?: AccessLogDestination | null;
  readonly random?: RandomSource;
  /** How often pools that the current table no longer names are retired (default 10 s). */
  readonly retireEveryMs?: number;
  /** How long a request head may take to arrive before it is answered 408 (default 20 s). */
  readonly headersTimeoutMs?: number;
  /** The folder relative file paths of the config are read from (upstream TLS files); default: the working directory. */
  readonly configDir?: string;
  /** Traces (`tracing:`): veer's span per exchange, propagated upstream and exported when sampled; null or absent: off, not one step per request. */
  readonly tracing?: TracingOptions | null;
  /** The TLS listener (`tls:`): its certificates, and whether plain HTTP is redirected to it. */
  readonly tls?: { readonly certificates: CertificateStore; readonly redirectHttp: boolean; readonly http2?: boolean } | null;
  /** The plain listener also takes HTTP/2 with prior knowledge (`h2c: true`). */
  readonly h2c?: boolean;
}

/** A running data plane. */
export interface DataPlane {
  readonly server: Server;
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Listens for TLS (only with the `tls` option). */
  listenTls(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets in-flight requests finish until `deadlineMs`, then closes what is left. */
  drain(deadlineMs: number): Promise<{ forced: number }>;
  /** Requests being served right now. */
  readonly inFlight: number;
  /** The upstream connections this data plane opened. */
  readonly upstreams: UpstreamRegistry;
}

const NO_ROUTE_MESSAGE = 'no service matches this host and path';
/** How long a drain waits for the access log's last lines to be written. */
const ACCESS_LOG_FLUSH_MS = 2000;

/** Answers a request that no service matches. */
function sendNoRoute(res: ServerResponse): number {
  return sendError(res, 404, 'no_route', NO_ROUTE_MESSAGE);
}

/**
 * Only WebSocket upgrades are tunnelled. Any other (h2c, which `curl --http2`
 * asks for on every request, with any method and body) is served as a plain
 * request with Upgrade dropped as hop-by-hop, as nginx does; tunnelling it
 * would turn a POST into a bodiless GET.
 */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.toLowerCase().includes('websocket');
}

const BAD_HOST = refusal('bad_request', 'the Host header must appear once and name a host (RFC 9112 3.2)');
const SLASH = 0x2f;

/**
 * HOT PATH. Null when the request may be routed, its target made origin-form
 * and normalised in place (request-target.ts); else why it may not
 * (FAULTY_FRAMING: why it may be served once, then the connection closed). An
 * ordinary request (a path without `%`, `//` or `/.`, a valid Host, no
 * Transfer-Encoding) costs one scan of its path and allocates nothing.
 */
function checkRequest(req: IncomingMessage): RequestRefusal | null {
  const target = req.url!;
  if (target.charCodeAt(0) === SLASH) {
    const path = normalizeOriginForm(target);
    if (path !== target) {
      if (typeof path !== 'string') return path;
      req.url = path;
    }
    const host = req.headers.host;
    if (host !== undefined && !isValidHost(host)) return BAD_HOST;
  } else {
    // Absolute-form: the target's authority replaces the Host header, so that is not checked.
    const refused = takeAbsoluteForm(req);
    if (refused !== null) return refused;
  }
  return req.headers['transfer-encoding'] === undefined ? null : checkTransferCoding(req);
}

/** How often Node looks for request heads past their timeout, at most: the 408 comes this late at worst. */
const HEADERS_TIMEOUT_CHECK_MS = 500;

/** The status line, headers and JSON body of an error written straight to a socket, closing it. */
function formatSocketError(status: number, code: HttpErrorCode, message: string): string {
  const body = formatErrorBody(code, message);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** Creates the data-plane server (not yet listening). */
export function createDataPlane(options: DataPlaneOptions): DataPlane {
  const { table, log } = options;
  const headersTimeoutMs = options.headersTimeoutMs ?? 20_000;
  const downstream = options.observer ?? null;
  const random = options.random ?? Math.random;
  const tunnels = new Set<Duplex>();
  const upstreams = new UpstreamRegistry(options.configDir === undefined ? {} : { configDir: options.configDir });
  // Pools outlive reloads; once a new config no longer names one, it is retired (after a grace).
  let retiredFor: unknown = null;
  const retiring = setInterval(() => {
    const current = table();
    if (current.config === retiredFor) return;
    retiredFor = current.config;
    upstreams.retainOnly(current);
  }, options.retireEveryMs ?? 10_000);
  retiring.unref();
  let inFlight = 0;
  let draining = false;
  // Decided here, once: with the access log off the observer and the 404 path are exactly
  // what they are without it, so an off access log costs no test per request.
  const tracer = options.tracing == null ? null : new Tracer(options.tracing);
  const accessLog = options.accessLog == null ? null : new AccessLog(options.accessLog, tracer !== null);
  // Counts exchanges in flight for draining, then hands each event on (metrics).
  const observer: ExchangeObserver =
    accessLog === null && tracer === null
      ? {
          onExchangeStart(version, exchange) {
            inFlight++;
            downstream?.onExchangeStart?.(version, exchange);
          },
          onExchangeEnd(exchange: FinishedExchange) {
            inFlight--;
            downstream?.onExchangeEnd(exchange);
          },
        }
      : {
          onExchangeStart(version, exchange) {
            inFlight++;
            tracer?.onExchangeStart(version, exchange);
            downstream?.onExchangeStart?.(version, exchange);
            accessLog?.countBytesOf(exchange);
          },
          onExchangeEnd(exchange: FinishedExchange) {
            inFlight--;
            downstream?.onExchangeEnd(exchange);
            tracer?.onExchangeEnd(exchange);
            accessLog?.logExchange(exchange);
          },
        };
  const noRoute: (req: IncomingMessage, res: ServerResponse, startedAt: number) => void =
    accessLog === null
      ? (_req, res) => void sendNoRoute(res)
      : (req, res, startedAt) => accessLog.logUnrouted(req, 404, startedAt, sendNoRoute(res));

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    ensureRequestId(req);
    if (draining) res.shouldKeepAlive = false;
    const refused = isAfterClose(req, res) ? AFTER_CLOSE : checkRequest(req);
    if (refused === FAULTY_FRAMING) {
      // Its body was read as chunked; it is served, but the connection goes after it.
      serveThenClose(req, res);
    } else if (refused !== null) {
      // The client's fault: answered and closed, never routed, never counted against a version.
      closeAfterResponse(req, res);
      sendError(res, refused.status, refused.code, refused.message);
      return;
    }
    const version = routeRequest(table(), req, random);
    if (version === null) {
      noRoute(req, res, startedAt);
      return;
    }
    forwardRequest(upstreams, req, res, version, observer, startedAt);
  };

  const serverOptions = {
    // Longer than typical load balancer idle timeouts (60 s) so the LB closes first.
    keepAliveTimeout: 65_000,
    // A repeated Host (or other single-valued header) is joined, not silently dropped: isValidHost sees it.
    joinDuplicateHeaders: true,
    headersTimeout: headersTimeoutMs,
    // Node looks for heads past headersTimeout only this often (30 s by default, which made the
    // 20 s timeout fire at up to 50 s). A pass is a walk over the connections still reading a
    // head, in C++: cheap at this rate.
    connectionsCheckingInterval: Math.max(1, Math.min(HEADERS_TIMEOUT_CHECK_MS, Math.ceil(headersTimeoutMs / 4))),
    requestTimeout: 0, // bodies may stream for long; upstream timeouts bound the exchange
    maxHeaderSize: 32 * 1024,
    shouldUpgradeCallback: isWebSocketUpgrade, // Node >= 24.9; older ones tunnel every upgrade
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3) and
    // veer forwards none: Node skips its readable life cycle ('end', 'close': ticks and
    // events on every GET). Node >= 24.12; older ones ignore it.
    optimizeEmptyRequests: true,
  };

  const tls = options.tls ?? null;
  // `redirectHttp`: the plain listener answers every request with 308 to the same host and path over
  // https (as nginx's `return 308 https://$host$request_uri`: no port, the TLS port is 443 outside).
  const onPlainRequest =
    tls?.redirectHttp === true
      ? (req: IncomingMessage, res: ServerResponse): void => {
          const refused = checkRequest(req);
          if (refused !== null && refused !== FAULTY_FRAMING) {
            closeAfterResponse(req, res);
            sendError(res, refused.status, refused.code, refused.message);
            return;
          }
          const host = (req.headers.host ?? '').replace(/:\d+$/, '');
          res.writeHead(308, { location: `https://${host}${req.url ?? '/'}`, 'content-length': 0 });
          res.end();
        }
      : onRequest;
  /**
   * A WebSocket request, from an HTTP/1.1 upgrade or an HTTP/2 extended CONNECT (which reads
   * as a GET by now): checked and routed as any request, then tunnelled. Tunnels are not
   * per-version traffic: neither counted nor logged, as nginx logs them only once closed.
   */
  const serveTunnel = (req: IncomingMessage, client: TunnelClient): void => {
    if (draining) {
      client.reject(503, 'shutting_down', 'veer is shutting down');
      return;
    }
    const refused = checkRequest(req);
    if (refused !== null) {
      client.reject(refused.status, refused.code, refused.message);
      return;
    }
    ensureRequestId(req);
    const version = routeRequest(table(), req, random);
    if (version === null) {
      client.reject(404, 'no_route', NO_ROUTE_MESSAGE);
      return;
    }
    forwardTunnel(upstreams, req, client, version, tunnels);
  };
  const onWebSocket = (req: IncomingMessage, res: Http2ServerResponse): void => serveTunnel(req, extendedConnectTunnelClient(res));

  const server = createServer(serverOptions, onPlainRequest);
  const frontOptions = { idleTimeoutMs: serverOptions.keepAliveTimeout, maxHeaderSize: serverOptions.maxHeaderSize };
  const h2c = options.h2c === true ? createHttp2Front(onPlainRequest, onWebSocket, frontOptions) : null;
  if (h2c !== null) acceptPriorKnowledge(server, h2c, headersTimeoutMs);
  const h2 = tls === null || tls.http2 === false ? null : createHttp2Front(onRequest, onWebSocket, frontOptions);
  const tlsServer = tls === null ? null : createTlsServer(tls.certificates, h2);
  /**
   * The TLS listener serves exactly what the plain one does; SNI picks the certificate per
   * handshake, and ALPN the protocol: h2 connections go to the HTTP/2 front, the rest to the
   * https server's own HTTP/1.1 parser.
   */
  function createTlsServer(certificates: CertificateStore, h2: Http2Front | null): HttpsServer {
    const listener = createHttpsServer(
      {
        ...serverOptions,
        ...certificates.defaultPair,
        SNICallback: (servername, done) => done(null, certificates.contextFor(servername)),
        ALPNProtocols: h2 === null ? ['http/1.1'] : ['h2', 'http/1.1'],
      },
      onRequest,
    );
    if (h2 !== null) {
      const [http1] = listener.listeners('secureConnection') as ((this: HttpsServer, socket: TLSSocket) => void)[];
      listener.removeAllListeners('secureConnection');
      listener.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2') h2.accept(socket);
        else http1!.call(listener, socket);
      });
    }
    // A renewed default certificate reaches clients without SNI too.
    certificates.onChange(() => {
      const pair = certificates.defaultPair;
      if (pair !== null) listener.setSecureContext({ ...pair });
    });
    return listener;
  }

  const servers = tlsServer === null ? [server] : [server, tlsServer];
  for (const listener of servers) attachHandlers(listener);

  function attachHandlers(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      serveTunnel(req, upgradeTunnelClient(socket, head));
    });

    // Node hands CONNECT to this event, never to 'request'; without a listener it drops the socket unanswered.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      rejectUpgrade(socket, 405, 'bad_request', 'CONNECT is not supported');
    });

    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (socket.destroyed || !socket.writable) {
        socket.destroy();
        return;
      }
      // veer already refused a request here, with a response that closes the connection; the parser
      // then failed on what followed (llhttp reads the head of `Transfer-Encoding: gzip` and fails on
      // its body). That response is the answer: a second one would follow it on a closing connection.
      if (isClosing(socket as Socket)) return;
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      log.debug({ err: err.message, code: err.code }, timedOut ? 'request head timed out' : 'rejected malformed request');
      const response = timedOut
        ? formatSocketError(408, 'request_timeout', `the request head did not arrive within ${headersTimeoutMs} ms`)
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? formatSocketError(431, 'bad_request', 'request headers too large')
          : // llhttp gives this one code for a coding it does not take (501, as nginx) and for
            // Content-Length beside Transfer-Encoding: that is a framing conflict, the client's fault (400).
            err.code === 'HPE_INVALID_TRANSFER_ENCODING' && !/Content-Length/i.test((err as { reason?: string }).reason ?? '')
            ? formatSocketError(501, UNSUPPORTED_TRANSFER_CODING.code, UNSUPPORTED_TRANSFER_CODING.message)
            : formatSocketError(400, 'bad_request', 'malformed HTTP request');
      const answer = () => {
        if (socket.destroyed || !socket.writable) return;
        // A client too slow to send a head may never close its side either: once the 408 is out,
        // the socket goes, rather than wait half-open for the peer.
        if (timedOut) socket.end(response, () => socket.destroy());
        else socket.end(response);
      };
      // A malformed or late request after complete ones: those are still owed their responses, in order, so
      // the answer waits for them. A connection that ended or broke mid-request is answered (and closed) at once.
      // A late head may still complete while they finish; the request it makes is not served.
      if (timedOut) refuseLaterRequests(socket as Socket);
      if (timedOut || (typeof err.code === 'string' && err.code.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE')) whenExchangesEnd(socket as Socket, answer);
      else answer();
    });
  }

  const listenOn = (listener: Server, host: string, port: number): Promise<{ host: string; port: number }> =>
    new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        const address = listener.address();
        resolve(typeof address === 'object' && address ? { host: address.address, port: address.port } : { host, port });
      });
    });

  return {
    server,
    upstreams,
    get inFlight() {
      return inFlight;
    },
    listen: (host, port) => listenOn(server, host, port),
    listenTls(host, port) {
      if (tlsServer === null) return Promise.reject(new Error('this data plane has no TLS listener'));
      return listenOn(tlsServer, host, port);
    },
    async drain(deadlineMs) {
      draining = true;
      const closed = Promise.all(servers.map((listener) => new Promise<void>((resolve) => (listener.listening ? listener.close(() => resolve()) : resolve()))));
      for (const listener of servers) listener.closeIdleConnections();
      // GOAWAY: HTTP/2 clients finish their streams and open new connections elsewhere.
      h2?.closeSessions();
      h2c?.closeSessions();
      // Connections become idle as their last response ends; close them as they do.
      const sweep = setInterval(() => {
        for (const listener of servers) listener.closeIdleConnections();
      }, 50);
      let forced = 0;
      const deadline = new Promise<'deadline'>((resolve) => setTimeout(() => resolve('deadline'), deadlineMs).unref());
      const tunnelsClosed = (async () => {
        while (tunnels.size > 0) await new Promise((r) => setTimeout(r, 50));
      })();
      const outcome = await Promise.race([Promise.all([closed, tunnelsClosed]).then(() => 'done' as const), deadline]);
      clearInterval(sweep);
      if (outcome === 'deadline') {
        forced = inFlight + tunnels.size;
        for (const socket of tunnels) socket.destroy();
        for (const listener of servers) listener.closeAllConnections();
        h2?.destroySessions();
        h2c?.destroySessions();
        await closed;
      }
      clearInterval(retiring);
      tls?.certificates.close();
      // The last spans go to the collector (bounded, as the access log's last lines).
      await options.tracing?.exporter?.close(ACCESS_LOG_FLUSH_MS);
      await upstreams.close(forced > 0);
      // The process exits after a drain: the last access lines go out first (bounded).
      await accessLog?.flush(ACCESS_LOG_FLUSH_MS);
      return { forced };
    },
  };
}
