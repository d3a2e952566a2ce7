// Low-level HTTP tools for integration tests: a raw-socket HTTP/1.1 client
// (so no client library rewrites the headers under test), raw TCP upstreams,
// bounded polling, and /proc readings of a child process's memory.

import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { listenOnLoopback } from './upstreams.ts';

/** One HTTP response read off a raw socket. */
export interface RawResponse {
  readonly status: number;
  readonly reason: string;
  /** Header lines in wire order, names as sent. */
  readonly rawHeaders: readonly (readonly [string, string])[];
  /** Lowercased name -> every value, in wire order. */
  readonly headers: Readonly<Record<string, string[]>>;
  readonly body: Buffer;
  /** True when the body was framed by chunked transfer-encoding. */
  readonly chunked: boolean;
}

/** Bodyless hints for `readResponse`: a HEAD response has headers only. */
export interface ReadOptions {
  readonly head?: boolean;
  readonly timeoutMs?: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Parses one response from the front of `buf`; null when more bytes are needed. */
function parseResponse(buf: Buffer, ended: boolean, head: boolean): { response: RawResponse; used: number } | null {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd === -1) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (statusLine === null) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
  const status = Number(statusLine[1]);
  const rawHeaders: [string, string][] = [];
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    rawHeaders.push([name, value]);
    (headers[name.toLowerCase()] ??= []).push(value);
  }
  let at = headEnd + 4;
  const response = (body: Buffer, chunked: boolean) => ({ status, reason: statusLine[2] ?? '', rawHeaders, headers, body, chunked });
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { response: response(Buffer.alloc(0), false), used: at };
  }
  const te = headers['transfer-encoding']?.join(',').toLowerCase() ?? '';
  if (te.includes('chunked')) {
    const parts: Buffer[] = [];
    for (let guard = 0; guard < 1_000_000; guard++) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd === -1) return null;
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) throw new Error('bad chunk size');
      if (size === 0) {
        // Trailers (none expected) end with an empty line.
        const trailerEnd = buf.indexOf('\r\n', lineEnd + 2);
        if (trailerEnd === -1) return null;
        at = trailerEnd + 2;
        return { response: response(Buffer.concat(parts), true), used: at };
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    throw new Error('too many chunks');
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    const n = Number(length[0]);
    if (buf.length < at + n) return null;
    return { response: response(Buffer.from(buf.subarray(at, at + n)), false), used: at + n };
  }
  // Read until the connection closes.
  if (!ended) return null;
  return { response: response(Buffer.from(buf.subarray(at)), false), used: buf.length };
}

/** An HTTP/1.1 client connection over a plain socket: write bytes, read responses in order. */
export class RawHttpConnection {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  /** Opens a connection to 127.0.0.1:port. */
  static open(port: number): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket));
      });
    });
  }

  /** True once the peer ended or closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads the next response; rejects after `timeoutMs` (default 5 s) or if the connection ends first. */
  async readResponse(options: ReadOptions = {}): Promise<RawResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      const parsed = parseResponse(this.#buffer, this.#ended, options.head === true);
      if (parsed !== null) {
        this.#buffer = this.#buffer.subarray(parsed.used);
        return parsed.response;
      }
      if (this.#ended) throw new Error(`connection ended before a whole response (${this.#buffer.length} bytes buffered)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no whole response within ${options.timeoutMs ?? 5000} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** Bytes received and not yet read as a response (e.g. tunnelled data after a 101). */
  pending(): Buffer {
    return this.#buffer;
  }

  /** Resolves when the peer has ended the connection, or false after `timeoutMs`. */
  async waitEnd(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    return this.#ended;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends `request` (a whole raw HTTP message) on a new connection and reads one response. */
export async function rawRequest(port: number, request: string | Buffer, options: ReadOptions = {}): Promise<RawResponse> {
  const conn = await RawHttpConnection.open(port);
  try {
    conn.write(request);
    return await conn.readResponse(options);
  } finally {
    conn.close();
  }
}

/**
 * Writes `bytes` on a new connection and collects everything that comes
 * back until the server closes it (`closed`) or `timeoutMs` pass.
 */
export function sendRawUntilClose(port: number, bytes: string, timeoutMs = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let closed = false;
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, timeoutMs);
  });
}

/** Builds a raw request head from header pairs (sent exactly as given). */
export function formatRequest(method: string, target: string, headers: readonly (readonly [string, string])[], body = ''): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return `${head}\r\n${body}`;
}

/** A plain TCP server on 127.0.0.1:0 that hands each socket to `onSocket`. */
export interface RawUpstream {
  readonly server: NetServer;
  readonly port: number;
  readonly url: string;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

/** Starts a raw TCP upstream; every accepted socket is tracked and destroyed on close. */
export async function startRawUpstream(onSocket: (socket: Socket) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  const port = await listenOnLoopback(server);
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Calls `onHead(head, socket)` for each request head received on a raw socket (GETs without bodies). */
export function onRequestHeads(socket: Socket, onHead: (head: string, socket: Socket) => void): void {
  let pending = '';
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      onHead(head, socket);
    }
  });
}

/** Polls `check` every `intervalMs` until it returns true; false after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Rejects with `label` if `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` at a time. */
export async function runLimited(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** A server's open connection count. */
export function connectionCount(server: { getConnections(cb: (err: Error | null, count: number) => void): unknown }): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

/** Memory figures of a process from /proc/PID/status, in kB. */
export interface ProcessMemory {
  /** Peak resident set size (VmHWM). */
  readonly peakKb: number;
  /** Current resident set size (VmRSS). */
  readonly rssKb: number;
}

/** Reads VmHWM and VmRSS of `pid`. */
export function readProcessMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { peakKb: field('VmHWM'), rssKb: field('VmRSS') };
}

/** Resets the peak RSS of `pid` to its current RSS (Linux clear_refs 5); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The part of a tap test that owns cleanup; helpers register their teardown on it. */
export interface TestScope {
  teardown(fn: () => unknown): void;
}

/** Every value of a header as a server received it (raw, so duplicates show). */
export function rawHeaderValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) out.push(req.rawHeaders[i + 1]!);
  return out;
}
