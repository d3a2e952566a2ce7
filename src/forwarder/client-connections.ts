// Noticing that a client went away, with one 'close' listener per client
// connection instead of one per request. A listener (or any new property)
// on each ServerResponse costs more than the rest of veer's per-request work
// together; a keep-alive connection carries many requests and gets its
// listener once.
//
//   client socket ──WeakMap──> ConnectionExchanges
//                                 head ─> exchange <─> exchange   (more than one only
//                                                                  when the client pipelines)
//
// An exchange links itself in when it starts and out when it ends; when the
// socket closes, every exchange still linked is told its client is gone.

import type { Duplex } from 'node:stream';

/**
 * What a request arrived on: its TCP (or TLS) connection, or for HTTP/2 its
 * stream (a client resetting it is that request's client going away).
 */
export type ClientConnection = Duplex;

/** What the watcher needs from an exchange: its links, and what to do when the client is gone. */
export interface WatchedExchange {
  connection: ConnectionExchanges | null;
  prevOnConnection: WatchedExchange | null;
  nextOnConnection: WatchedExchange | null;
  /** Whether the client sent its whole request (headers and body). */
  readonly requestComplete: boolean;
  /** Called at most once, when the client connection closes while the exchange is linked. */
  clientGone(): void;
}

/** The exchanges in flight on one client connection. */
export class ConnectionExchanges {
  head: WatchedExchange | null = null;
  /** Called once when the last exchange in flight ends (set by whenExchangesEnd). */
  onIdle: (() => void) | null = null;
}

/**
 * Calls `then` once every exchange in flight on `socket` has ended (at once
 * when none is): an error answer to a later, malformed request must come
 * after the responses the connection already owes, in order.
 */
export function whenExchangesEnd(socket: ClientConnection, then: () => void): void {
  const list = byConnection.get(socket);
  if (list === undefined || list.head === null || !allRequestsComplete(list)) {
    // Nothing owed, or a request whose body broke off: it can never be answered, so no waiting.
    then();
    return;
  }
  list.onIdle = then;
}

function allRequestsComplete(list: ConnectionExchanges): boolean {
  for (let e = list.head; e !== null; e = e.nextOnConnection) if (!e.requestComplete) return false;
  return true;
}

const byConnection = new WeakMap<ClientConnection, ConnectionExchanges>();

function onConnectionClose(this: ClientConnection): void {
  const list = byConnection.get(this);
  if (list === undefined) return;
  byConnection.delete(this);
  let exchange = list.head;
  list.head = null;
  while (exchange !== null) {
    const next = exchange.nextOnConnection;
    exchange.connection = exchange.prevOnConnection = exchange.nextOnConnection = null;
    exchange.clientGone();
    exchange = next;
  }
}

/** Links `exchange` to its client connection; a connection already closed tells it at once. */
export function watchClientConnection(socket: ClientConnection, exchange: WatchedExchange): void {
  if (socket.destroyed) {
    exchange.clientGone();
    return;
  }
  let list = byConnection.get(socket);
  if (list === undefined) {
    list = new ConnectionExchanges();
    byConnection.set(socket, list);
    socket.once('close', onConnectionClose);
  }
  const head = list.head;
  exchange.connection = list;
  exchange.nextOnConnection = head;
  if (head !== null) head.prevOnConnection = exchange;
  list.head = exchange;
}

/** Unlinks `exchange` (it has ended); a no-op when it is not linked. */
export function unwatchClientConnection(exchange: WatchedExchange): void {
  const list = exchange.connection;
  if (list === null) return;
  const prev = exchange.prevOnConnection;
  const next = exchange.nextOnConnection;
  if (prev !== null) prev.nextOnConnection = next;
  else list.head = next;
  if (next !== null) next.prevOnConnection = prev;
  exchange.connection = exchange.prevOnConnection = exchange.nextOnConnection = null;
  if (list.head === null && list.onIdle !== null) {
    const then = list.onIdle;
    list.onIdle = null;
    then();
  }
}
