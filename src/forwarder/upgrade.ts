// WebSocket (and any HTTP/1.1 Upgrade) proxying through undici's dispatcher:
// the upstream answers 101, undici hands over its socket, and the two
// sockets are piped together. Both are destroyed as soon as either side
// closes or errors, so no socket outlives its peer.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

type DispatchController = Dispatcher.DispatchController;
import { formatErrorBody, type ErrorCode } from '../errors.ts';
import type { CompiledVersion } from '../table/index.ts';
import { buildUpstreamHeaders, formatUpgradeHead } from './headers.ts';
import { nextUpstream } from './forward.ts';
import { classifyUpstreamError } from './upstream-errors.ts';

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/** Answers an upgrade request on its raw socket with a JSON error and closes it. */
export function rejectUpgrade(socket: Duplex, status: number, code: ErrorCode, message: string): void {
  if (socket.destroyed) return;
  const body = formatErrorBody(code, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
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

  onResponseStart(controller: DispatchController, statusCode: number): void {
    // The upstream declined the upgrade; undici reports it as an error next.
    void controller;
    void statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    rejectUpgrade(this.socket, 502, 'upstream_protocol_error', 'the upstream did not accept the upgrade');
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    const failure = classifyUpstreamError(err);
    const status = failure.code === 'upstream_timeout' ? 504 : 502;
    rejectUpgrade(this.socket, status, failure.code, failure.message);
  }
}

/** Forwards an upgrade request; `tunnels` tracks the open client sockets for draining. */
export function forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, version: CompiledVersion, tunnels: Set<Duplex>): void {
  const upstream = nextUpstream(version);
  const upgradeProtocol = req.headers.upgrade ?? 'websocket';
  upstream.pool.dispatch(
    {
      path: req.url ?? '/',
      method: 'GET',
      headers: buildUpstreamHeaders(req, version.name, 'http'),
      upgrade: upgradeProtocol,
      headersTimeout: version.service.timeouts.responseMs,
    },
    new UpgradeExchange(socket, head, version, tunnels),
  );
}
