// WebSocket upgrade proxying through undici's dispatcher (the data plane
// serves other upgrades, such as h2c, as plain requests):
// the upstream answers 101, undici hands over its socket, and the two
// sockets are piped together. Both are destroyed as soon as either side
// closes or errors, so no socket outlives its peer. An upstream that
// declines (401, 403, 426...) has its answer relayed, then the client
// connection is closed, as nginx and Envoy do.

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

class UpgradeExchange {
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly version: CompiledVersion;
  readonly tunnels: Set<Duplex>;
  controller: DispatchController | null = null;
  /** True once the upstream answered with a non-101 response that is being relayed. */
  declined = false;

  constructor(socket: Duplex, head: Buffer, version: CompiledVersion, tunnels: Set<Duplex>) {
    this.socket = socket;
    this.head = head;
    this.version = version;
    this.tunnels = tunnels;
    socket.on('error', this.onEarlyClose);
    socket.on('close', this.onEarlyClose);
  }

  readonly onEarlyClose = (): void => {
    this.controller?.abort(new Error('client closed the connection'));
  };

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.socket.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onRequestUpgrade(_controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    const client = this.socket;
    client.off('error', this.onEarlyClose);
    client.off('close', this.onEarlyClose);
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    const expose = this.version.service.exposeVersionHeader ? this.version.name : null;
    client.write(formatUpgradeHead(statusCode, headers, expose));
    if (this.head.length > 0) upstream.write(this.head);
    this.tunnels.add(client);
    joinSockets(client, upstream, () => this.tunnels.delete(client));
  }

  onResponseStart(controller: DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    // A non-101 answer: the upstream declined the upgrade. Relay it; the body
    // is framed by its content-length or, failing that, by closing.
    if (statusCode < 200) return;
    const socket = this.socket;
    if (socket.destroyed) {
      controller.abort(new Error('client closed the connection'));
      return;
    }
    this.declined = true;
    const out = buildClientHeaders(headers, this.version.service.exposeVersionHeader ? this.version.name : null);
    out.push('connection', 'close');
    socket.write(formatResponseHead(statusCode, statusMessage || STATUS_CODES[statusCode] || '', out));
  }

  readonly onDrain = (): void => {
    this.controller?.resume();
  };

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (!this.declined) return;
    if (!this.socket.write(chunk)) {
      controller.pause();
      this.socket.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.declined) this.socket.end();
    else rejectUpgrade(this.socket, 502, 'upstream_protocol_error', 'the upstream did not accept the upgrade');
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    if (this.declined) {
      // Part of the upstream's answer is out already: cut the connection so the client sees it truncated.
      this.socket.destroy();
      return;
    }
    const failure = classifyUpstreamError(err);
    const status = failure.code === 'upstream_timeout' ? 504 : 502;
    rejectUpgrade(this.socket, status, failure.code, failure.message);
  }
}

/** Forwards an upgrade request; `tunnels` tracks the open client sockets for draining. */
export function forwardUpgrade(upstreams: UpstreamRegistry, req: IncomingMessage, socket: Duplex, head: Buffer, version: CompiledVersion, tunnels: Set<Duplex>): void {
  const endpoint = upstreams.endpointsOf(version.upstream).pick();
  if (endpoint === null) {
    // Every endpoint is ejected; a tunnel is not failed over (it is not a request that can be answered elsewhere).
    rejectUpgrade(socket, 503, 'no_healthy_upstream', 'every endpoint of the version is out of rotation');
    return;
  }
  const upgradeProtocol = req.headers.upgrade ?? 'websocket';
  endpoint.dispatcher.dispatch(
    {
      path: req.url ?? '/',
      method: 'GET',
      headers: buildUpstreamHeaders(req, version.name),
      upgrade: upgradeProtocol,
      headersTimeout: version.service.timeouts.responseMs,
    },
    new UpgradeExchange(socket, head, version, tunnels),
  );
}
