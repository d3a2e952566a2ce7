// Request framing that veer refuses to guess at (RFC 9112 6.1): a transfer
// coding other than `chunked` alone, and HTTP/1.0 with Transfer-Encoding.
// When framing is in doubt, so is where the next request starts: after such
// a request (or any refused one) nothing more on the connection is served.
//
//   POST / HTTP/1.0 ... Transfer-Encoding: chunked   <- served, `connection: close`
//   5 hello 0                                        <- its body
//   GET /smuggled HTTP/1.1                           <- Node parses and emits it at once,
//                                                      queued behind the first: refused here,
//                                                      never forwarded

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { refusal, type RequestRefusal } from './request-target.ts';

/** The 501 for any request transfer coding but `chunked` alone (nginx answers the same). */
export const UNSUPPORTED_TRANSFER_CODING = refusal('unsupported_transfer_coding', 'the only request transfer coding veer accepts is chunked, alone (RFC 9112 6.1)');
/** The answer to a request read after one that closes its connection. */
export const AFTER_CLOSE = refusal('bad_request', 'an earlier request on this connection closes it');

/**
 * The answer to HTTP/1.0 with Transfer-Encoding, which has faulty framing (RFC 9112 6.1): a
 * request is served and its connection then closed (serveThenClose); an upgrade is refused.
 */
export const FAULTY_FRAMING = refusal('bad_request', 'HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1)');

/**
 * What a request with a Transfer-Encoding gets: null when it is exactly one
 * `chunked` line in HTTP/1.1, else UNSUPPORTED_TRANSFER_CODING or
 * FAULTY_FRAMING. Reads rawHeaders: Node joins repeated lines (`gzip` then
 * `chunked` arrive as `gzip, chunked`) and llhttp frames the body by its
 * last coding, so only the lines as sent show a coding that would be lost.
 */
export function checkTransferCoding(req: IncomingMessage): RequestRefusal | null {
  const raw = req.rawHeaders;
  let lines = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 17 || name.toLowerCase() !== 'transfer-encoding') continue;
    lines++;
    if (lines > 1 || raw[i + 1]!.trim().toLowerCase() !== 'chunked') return UNSUPPORTED_TRANSFER_CODING;
  }
  if (lines !== 1) return UNSUPPORTED_TRANSFER_CODING;
  return req.httpVersionMinor === 0 ? FAULTY_FRAMING : null;
}

// Connections that close after their current response: later requests that
// Node already parsed on them are refused, not forwarded. Weak: a closed
// socket leaves no trace.
const closing = new WeakSet<Socket>();

/**
 * Makes `res` the last response on its connection (`connection: close`) and
 * refuses whatever Node parses after it there (see isAfterClose).
 */
export function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
  closing.add(req.socket);
}

/** Refuses whatever Node parses on `socket` from now on while earlier responses are owed (see isAfterClose). */
export function refuseLaterRequests(socket: Socket): void {
  closing.add(socket);
}

/** Whether veer already answered on `socket` with a response that closes it (or is about to). */
export function isClosing(socket: Socket): boolean {
  return closing.has(socket);
}

/**
 * HOT PATH. Whether this request came after one that closes its connection.
 * Such a request was parsed while an earlier response was still owed, so it
 * has no socket yet: only requests without one pay for the set lookup.
 */
export function isAfterClose(req: IncomingMessage, res: ServerResponse): boolean {
  return res.socket === null && closing.has(req.socket);
}

/**
 * HTTP/1.0 with Transfer-Encoding (RFC 9112 6.1): the framing is faulty, so
 * the message is served and then the connection is closed.
 */
export function serveThenClose(req: IncomingMessage, res: ServerResponse): void {
  closeAfterResponse(req, res);
  const socket = req.socket;
  res.once('finish', () => {
    // Node ends the socket now and destroys it only once its write side has finished; a
    // request parsed in between would get the socket and be served. Nothing is lost by closing
    // at once: the body was read to its end (it went upstream), the response is in the kernel.
    if (req.complete && socket.writableLength === 0) socket.destroy();
  });
}
