// WebSocket tunnels through undici's dispatcher (the data plane serves other
// upgrades, such as h2c, as plain requests). The upstream is always asked
// with an HTTP/1.1 upgrade; what differs is the client's end, a TunnelClient:
//
//   HTTP/1.1  GET + Upgrade ─────> socket client (below)         ─┐
//   HTTP/2    extended CONNECT ──> stream client (extended-connect.ts) ─┤
//                                                                  └─> UpgradeExchange ─> dispatch(upgrade: websocket)
//                                                                        101: client.open() pipes the two ends
//                                                                        other: relayed by the client, then closed
//
// No tunnel end outlives its peer. An upstream that declines (401, 403,
// 426...) has its answer relayed, as nginx and Envoy do.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

type DispatchController = Dispatcher.DispatchController;
import { formatErrorBody, type HttpErrorCode } from '../errors.ts';
import type { CompiledVersion } from '../table/index.ts';
import { buildClientHeaders, buildUpstreamHeaders, formatResponseHead, formatUpgradeHead } from './headers.ts';
import { classifyUpstreamError } from './upstream-errors.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';

/** The client's end of a tunnel: how its protocol asks, is answered, and carries the bytes. */
export interface TunnelClient {
  /** What is piped to the upstream once the tunnel is open; 'close' on it before then aborts the upstream request. */
  readonly duplex: Duplex;
  /** The headers of the upstream's HTTP/1.1 upgrade request (undici adds Connection and Upgrade). */
  upstreamHeaders(req: IncomingMessage, versionName: string): string[];
  /** Answers with veer's JSON error and closes this end. */
  reject(status: number, code: HttpErrorCode, message: string): void;
  /** The upstream switched protocols: answers the client and joins the two ends; `onClose` runs once both are gone. */
  open(headers: IncomingHttpHeaders, upstream: Duplex, versionName: string | null, onClose: () => void): void;
  /** The upstream declined: relays its status and headers (hop-by-hop already removed). */
  writeDeclinedHead(statusCode: number, statusMessage: string, headers: string[]): void;
  /** Relays the declined answer's end. */
  endDeclined(): void;
}

/** Answers an upgrade request on its raw socket with a JSON error and closes it. */
export function rejectUpgrade(socket: Duplex, status: number, code: HttpErrorCode, message: string): void {
  if (socket.destroyed) return;
  const body = formatErrorBody(code, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Joins two sockets; when one ends or fails, both are destroyed. */
function joinSockets(client: Duplex, upstream: Duplex, onClose: () => void): void {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    client.destroy();
    upstream.destroy();
    onClose();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream);
  upstream.pipe(client);
}

/** An HTTP/1.1 client after `Upgrade: websocket`: its raw socket, and the bytes read past the request head. */
class SocketTunnelClient implements TunnelClient {
  readonly duplex: Duplex;
  readonly #head: Buffer;

  constructor(socket: Duplex, head: Buffer) {
    this.duplex = socket;
    this.#head = head;
  }

  upstreamHeaders(req: IncomingMessage, versionName: string): string[] {
    return buildUpstreamHeaders(req, versionName);
  }

  reject(status: number, code: HttpErrorCode, message: string): void {
    rejectUpgrade(this.duplex, status, code, message);
  }

  open(headers: IncomingHttpHeaders, upstream: Duplex, versionName: string | null, onClose: () => void): void {
    this.duplex.write(formatUpgradeHead(101, headers, versionName));
    if (this.#head.length > 0) upstream.write(this.#head);
    joinSockets(this.duplex, upstream, onClose);
  }

  writeDeclinedHead(statusCode: number, statusMessage: string, headers: string[]): void {
    // The rest of the connection is the upgrade's: it is closed after the answer.
    headers.push('connection', 'close');
    this.duplex.write(formatResponseHead(statusCode, statusMessage, headers));
  }

  endDeclined(): void {
    this.duplex.end();
  }
}

/** The client end of an HTTP/1.1 upgrade request. */
export function upgradeTunnelClient(socket: Duplex, head: Buffer): TunnelClient {
  return new SocketTunnelClient(socket, head);
}

class UpgradeExchange {
  readonly client: TunnelClient;
  readonly version: CompiledVersion;
  readonly tunnels: Set<Duplex>;
  controller: DispatchController | null = null;
  /** True once the upstream answered with a non-101 response that is being relayed. */
  declined = false;

  constructor(client: TunnelClient, version: CompiledVersion, tunnels: Set<Duplex>) {
    this.client = client;
    this.version = version;
    this.tunnels = tunnels;
    client.duplex.on('error', this.onEarlyClose);
    client.duplex.on('close', this.onEarlyClose);
  }

  readonly onEarlyClose = (): void => {
    this.controller?.abort(new Error('client closed the connection'));
  };

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.client.duplex.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onRequestUpgrade(_controller: DispatchController, _statusCode: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    const client = this.client.duplex;
    client.off('error', this.onEarlyClose);
    client.off('close', this.onEarlyClose);
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    this.tunnels.add(client);
    this.client.open(headers, upstream, this.version.service.exposeVersionHeader ? this.version.name : null, () => this.tunnels.delete(client));
  }

  onResponseStart(controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // A non-101 answer: the upstream declined the upgrade. Relay it; the body
    // is framed by its content-length or, failing that, by closing.
    if (statusCode < 200) return;
    if (this.client.duplex.destroyed) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    this.declined = true;
    const out = buildClientHeaders(headers, this.version.service.exposeVersionHeader ? this.version.name : null);
    this.client.writeDeclinedHead(statusCode, statusMessage || STATUS_CODES[statusCode] || '', out);
  }

  readonly onDrain = (): void => {
    this.controller?.resume();
  };

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (!this.declined) return;
    if (!this.client.duplex.write(chunk)) {
      controller.pause();
      this.client.duplex.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.declined) this.client.endDeclined();
    else this.client.reject(502, 'upstream_protocol_error', 'the upstream did not accept the upgrade');
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    if (this.declined) {
      // Part of the upstream's answer is out already: cut it so the client sees it truncated.
      this.client.duplex.destroy();
      return;
    }
    const failure = classifyUpstreamError(err);
    const status = failure.code === 'upstream_timeout' ? 504 : 502;
    this.client.reject(status, failure.code, failure.message);
  }
}

/**
 * Forwards a WebSocket request, from an HTTP/1.1 upgrade or an HTTP/2 extended CONNECT,
 * as an HTTP/1.1 upgrade; `tunnels` tracks the open client ends for draining.
 */
export function forwardTunnel(upstreams: UpstreamRegistry, req: IncomingMessage, client: TunnelClient, version: CompiledVersion, tunnels: Set<Duplex>): void {
  if (version.upstream.protocol !== 'http1') {
    // RFC 8441 to an HTTP/2 upstream is not spoken: refused before any connection is made.
    client.reject(501, 'unsupported_upgrade', `WebSocket is not forwarded to an HTTP/2 upstream (protocol ${version.upstream.protocol})`);
    return;
  }
  const endpoint = upstreams.endpointsOf(version.upstream).pick();
  if (endpoint === null) {
    // Every endpoint is ejected; a tunnel is not failed over (it is not a request that can be answered elsewhere).
    client.reject(503, 'no_healthy_upstream', 'every endpoint of the version is out of rotation');
    return;
  }
  endpoint.dispatcher.dispatch(
    {
      path: req.url ?? '/',
      method: 'GET',
      headers: client.upstreamHeaders(req, version.name),
      // An HTTP/1.1 client's own token (the data plane tunnels only those naming websocket); HTTP/2 has no Upgrade header.
      upgrade: req.headers.upgrade ?? 'websocket',
      headersTimeout: version.service.timeouts.responseMs,
    },
    new UpgradeExchange(client, version, tunnels),
  );
}
