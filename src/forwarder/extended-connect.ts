// The HTTP/2 end of a WebSocket tunnel (RFC 8441): an extended CONNECT
// stream, asked upstream as an HTTP/1.1 upgrade (upgrade.ts).
//
//   client                         veer                               upstream (HTTP/1.1)
//   HEADERS :method CONNECT  ───>  GET /path  Connection: Upgrade  ───>
//           :protocol websocket    Upgrade: websocket
//           sec-websocket-version  Sec-WebSocket-Key: (made here: RFC 8441 clients send none)
//                                  Sec-WebSocket-Version, -Protocol, -Extensions as the client sent
//   HEADERS :status 200      <───  Sec-WebSocket-Accept checked       <─── 101 Switching Protocols
//           sec-websocket-protocol, -extensions passed back
//   DATA <════════════════════════ piped both ways, with backpressure ════════════> socket
//
// Closing (RFC 8441 5, RFC 9113 8.5): the client's END_STREAM half-closes
// the upstream socket; the upstream's end ends the stream, which is then
// closed (RST_STREAM NO_ERROR) once its last DATA is out; a reset stream
// destroys the socket, and a socket error resets the stream with
// CONNECT_ERROR, HTTP/2's "the TCP connection was reset".

import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { constants, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { HttpErrorCode } from '../errors.ts';
import { sendError } from './forward.ts';
import { buildClientHeaders, buildUpstreamHeaders, REQUEST_ID_HEADER } from './headers.ts';
import type { TunnelClient } from './upgrade.ts';

/** RFC 6455 4.2.2: the accept value is SHA-1 of the key and this GUID, in base64. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept an upstream must answer `key` with. */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/** Response headers of the upstream's 101 that mean nothing on an HTTP/2 stream (RFC 8441 5: no Accept over HTTP/2). */
const DROPPED_101_HEADERS = new Set(['sec-websocket-accept']);

/** A flat [name, value, ...] list as a headers object (repeated names become arrays). */
function toHeaderObject(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const prior = out[name];
    if (prior === undefined) out[name] = value;
    else out[name] = Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return out;
}

/** Joins a stream and an upstream socket both ways; `onClose` runs once, when the stream is gone. */
function joinStream(stream: ServerHttp2Stream, upstream: Duplex, onClose: () => void): void {
  // The stream's errors end in its 'close' (handled below); the socket's in its own.
  stream.on('error', () => {});
  upstream.on('error', () => {
    if (!stream.closed) stream.close(constants.NGHTTP2_CONNECT_ERROR);
  });
  upstream.once('close', () => {
    if (stream.closed) return;
    // A socket that closed without ending (destroyed) is a reset; one that ended had its end piped into the stream.
    if (!upstream.readableEnded) {
      stream.close(constants.NGHTTP2_CONNECT_ERROR);
      return;
    }
    // Nothing can reach the upstream any more: once the last DATA and END_STREAM are out, the stream goes.
    if (stream.writableFinished) stream.close(constants.NGHTTP2_NO_ERROR);
    else stream.once('finish', () => stream.close(constants.NGHTTP2_NO_ERROR));
  });
  stream.once('close', () => {
    upstream.destroy();
    onClose();
  });
  stream.pipe(upstream);
  upstream.pipe(stream);
}

/** An extended CONNECT stream (RFC 8441) as a tunnel's client end. */
class StreamTunnelClient implements TunnelClient {
  readonly duplex: ServerHttp2Stream;
  readonly #res: Http2ServerResponse;
  readonly #key = randomBytes(16).toString('base64');

  constructor(res: Http2ServerResponse) {
    this.#res = res;
    this.duplex = res.stream;
  }

  upstreamHeaders(req: IncomingMessage, versionName: string): string[] {
    const out: string[] = [];
    const built = buildUpstreamHeaders(req, versionName);
    let version = false;
    for (let i = 0; i < built.length; i += 2) {
      const name = built[i]!;
      // A client's own key would not be the one checked below.
      if (name === 'sec-websocket-key') continue;
      if (name === 'sec-websocket-version') version = true;
      out.push(name, built[i + 1]!);
    }
    out.push('sec-websocket-key', this.#key);
    // RFC 8441 4 has clients send it; 13 is the only version there is (RFC 6455 4.1).
    if (!version) out.push('sec-websocket-version', '13');
    return out;
  }

  reject(status: number, code: HttpErrorCode, message: string): void {
    if (this.duplex.destroyed) return;
    sendError(this.#res as unknown as ServerResponse, status, code, message);
  }

  open(headers: IncomingHttpHeaders, upstream: Duplex, versionName: string | null, onClose: () => void): void {
    if (headers['sec-websocket-accept'] !== websocketAccept(this.#key)) {
      upstream.destroy();
      this.reject(502, 'upstream_protocol_error', 'the upstream answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept');
      onClose();
      return;
    }
    const kept: IncomingHttpHeaders = {};
    for (const name in headers) if (!DROPPED_101_HEADERS.has(name)) kept[name] = headers[name];
    const requestId = this.#res.req.headers[REQUEST_ID_HEADER];
    this.#res.writeHead(200, toHeaderObject(buildClientHeaders(kept, versionName, requestId)));
    joinStream(this.duplex, upstream, onClose);
  }

  writeDeclinedHead(statusCode: number, _statusMessage: string, headers: string[]): void {
    // HTTP/2 has no reason phrase, and the connection lives on: only this stream ends.
    this.#res.writeHead(statusCode, toHeaderObject(headers));
  }

  endDeclined(): void {
    this.#res.end();
  }
}

/** The client end of an HTTP/2 extended CONNECT for WebSocket (RFC 8441). */
export function extendedConnectTunnelClient(res: Http2ServerResponse): TunnelClient {
  return new StreamTunnelClient(res);
}
