// HTTP/2 to clients. The TLS listener offers h2 and http/1.1 by ALPN; a
// connection that picked h2 is handed to a node:http2 server that never
// listens itself, and each of its streams becomes a request served by the
// same handler as HTTP/1.1 (Node's compatibility request and response), so
// routing, sticky keys, rules, metrics and the access log are one code path.
//
//   TLS handshake ──alpn h2──────> Http2Front.accept ─> session ─> stream ─> onRequest
//                 └─alpn http/1.1─> the https server's own HTTP/1.1 parser ──> onRequest
//
// With `h2c: true` the plain listener does the same by the first bytes a
// client sends: HTTP/2 with prior knowledge (RFC 9113 3.3) opens with the
// preface "PRI * HTTP/2.0", a method that HTTP/1.1 reserves for exactly that.
//
// What HTTP/2 changes for a request: the host is `:authority` (copied into
// `host`, which routing reads); connection-specific headers, a TE other than
// `trailers` and malformed pseudo-headers never get here (nghttp2 resets the
// stream, RFC 9113 8.2.2 and 8.3); a stream the client resets closes its
// request's "socket", which the forwarder already watches (499, upstream
// request aborted).
//
// WebSocket over HTTP/2 (RFC 8441): the front advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT with `:protocol
// websocket` becomes a GET of its `:path` for routing and is handed to
// `onWebSocket`, which tunnels it as an HTTP/1.1 upgrade would be. A plain
// CONNECT is 405, another `:protocol` 501.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { constants, createServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { sendError } from '../forwarder/index.ts';

/** Serves HTTP/2 connections that a listener accepted. */
export interface Http2Front {
  /** Takes over a connection that negotiated h2. */
  accept(socket: Duplex): void;
  /** HTTP/2 connections open now. */
  readonly sessions: number;
  /** Sends GOAWAY on every connection: streams running finish, no new ones start, then the connection closes. */
  closeSessions(): void;
  /** Closes every connection at once. */
  destroySessions(): void;
}

export interface Http2FrontOptions {
  /** How long a connection with no frames stays open (as the HTTP/1.1 keep-alive timeout). */
  readonly idleTimeoutMs: number;
  /** The most bytes of header fields a request may carry. */
  readonly maxHeaderSize: number;
}

/** Streams one client connection may run at once: nginx's http2_max_concurrent_streams. */
const MAX_CONCURRENT_STREAMS = 128;

/** The one `:protocol` of an extended CONNECT (RFC 8441) that is tunnelled. */
const WEBSOCKET_PROTOCOL = 'websocket';

/**
 * Makes `:authority` the request's host; false when a Host header names
 * another (then answered 400: RFC 9113 8.3.1 makes the request malformed).
 */
function takeAuthority(req: Http2ServerRequest, res: Http2ServerResponse): boolean {
  const headers = req.headers;
  const authority = headers[':authority'];
  if (authority === undefined) return true;
  const host = headers.host;
  if (host !== undefined && host !== authority) {
    sendError(res as unknown as ServerResponse, 400, 'bad_request', 'the Host header and :authority differ (RFC 9113 8.3.1)');
    return false;
  }
  headers.host = authority;
  return true;
}

/**
 * Creates the HTTP/2 front; `onRequest` serves each stream as a request, and
 * `onWebSocket` each extended CONNECT for WebSocket (RFC 8441), which by then
 * reads as a GET of its `:path` (its routing, rules and sticky keys are a GET's).
 */
export function createHttp2Front(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onWebSocket: (req: IncomingMessage, res: Http2ServerResponse) => void,
  options: Http2FrontOptions,
): Http2Front {
  const sessions = new Set<ServerHttp2Session>();
  const server = createServer({
    // enableConnectProtocol: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 3), without which clients may not send `:protocol`.
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: options.maxHeaderSize, enableConnectProtocol: true },
    maxSessionInvalidFrames: 100,
  });
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A broken connection is the client's business: its streams see 'close' (499) and nothing else is owed.
    session.on('error', () => session.destroy());
    session.setTimeout(options.idleTimeoutMs, () => session.close());
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (takeAuthority(req, res)) onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
  // Node's compatibility layer hands every CONNECT here, never to 'request'.
  server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (!takeAuthority(req, res)) return;
    const protocol = req.headers[':protocol'];
    if (protocol === undefined) {
      sendError(res as unknown as ServerResponse, 405, 'bad_request', 'CONNECT is not supported (WebSocket over HTTP/2 is an extended CONNECT, RFC 8441)');
      return;
    }
    if (protocol.toLowerCase() !== WEBSOCKET_PROTOCOL) {
      sendError(res as unknown as ServerResponse, 501, 'unsupported_upgrade', 'only the websocket :protocol is tunnelled (RFC 8441)');
      return;
    }
    // Node's setter writes `:method` too, so everything downstream (routing, method matchers) sees a GET.
    const request = req as unknown as IncomingMessage;
    request.method = 'GET';
    onWebSocket(request, res);
  });
  return {
    accept(socket) {
      server.emit('connection', socket);
    },
    get sessions() {
      return sessions.size;
    },
    closeSessions() {
      for (const session of sessions) session.close();
    },
    destroySessions() {
      for (const session of sessions) session.destroy(undefined, constants.NGHTTP2_NO_ERROR);
    },
  };
}

/** The first bytes of the HTTP/2 connection preface; no HTTP/1.1 request starts with them. */
const PREFACE_START = 'PRI';

/**
 * Makes the plain HTTP/1.1 `server` also take HTTP/2 with prior knowledge
 * (h2c): each new connection's first bytes are read before any parser sees
 * them, put back, and the connection handed to `front` when they are the
 * HTTP/2 preface, to the server's own HTTP/1.1 parser otherwise. A client
 * that sends nothing within `timeoutMs` is closed, as a slow head would be.
 */
export function acceptPriorKnowledge(server: Server, front: Http2Front, timeoutMs: number): void {
  const [http1] = server.listeners('connection') as ((this: Server, socket: Socket) => void)[];
  server.removeListener('connection', http1!);
  server.on('connection', (socket: Socket) => {
    let head: Buffer | null = null;
    const giveUp = (): void => {
      socket.destroy();
    };
    const timer = setTimeout(giveUp, timeoutMs);
    const onReadable = (): void => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) head = head === null ? chunk : Buffer.concat([head, chunk]);
      if (head === null || head.length < PREFACE_START.length) return;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', giveUp);
      socket.removeListener('error', giveUp);
      socket.unshift(head);
      if (head.toString('latin1', 0, PREFACE_START.length) === PREFACE_START) front.accept(socket);
      else http1!.call(server, socket);
    };
    socket.on('readable', onReadable);
    // Closed before it said anything: nothing is owed.
    socket.once('end', giveUp);
    socket.once('error', giveUp);
    socket.once('close', () => clearTimeout(timer));
  });
}
