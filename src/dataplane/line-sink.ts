// A buffered writer of text lines that never blocks the event loop: lines
// gather into chunks of whole lines, and one chunk is written at a time.
//
//   push(line) ──> filling chunk ──full──> chunks[head..] ──> one write at a time
//                      │ (≤ limit)                                 ^
//                      └── after FLUSH_MS, or a flush ─────────────┘
//
// How it writes, chosen once from what the destination is:
// - A pipe, a terminal or /dev/null: through an open file description of its
//   own (reopened via /proc/self/fd), non-blocking, written synchronously. The
//   shared one behind stdout stays as Node and the process log use it
//   (blocking). A write is one syscall and never waits: a full pipe answers
//   EAGAIN, and the sink tries that chunk again RETRY_MS later. Into a pipe a
//   write is at most PIPE_BUF bytes of whole lines, which the kernel never
//   interleaves with another writer's, so lines of several workers and of the
//   process log on one pipe (Kubernetes, Docker, `| jq`) never mix.
// - Anything else (a file, a socket: journald's, a Node parent's; or no
//   /proc): fs.write on libuv's threadpool, up to WRITE_MAX_BYTES at a time.
//   On the bench VM a threadpool write cost ~45 µs of CPU against ~9 µs for a
//   synchronous one, hence the fast path above.
// - A stream (tests): its write(chunk, done).
//
// A destination that does not keep up makes pending text grow up to
// MAX_PENDING_CHARS; lines beyond are dropped and counted, and once a write
// works again a line (from `droppedLine`) says how many.

import { constants, fstatSync, openSync, write as writeAsync, writeSync } from 'node:fs';

/** A stream lines can go to instead of a file descriptor. */
export interface LineStream {
  write(chunk: Buffer, done: (err?: Error | null) => void): unknown;
}

/** Where lines go: a file descriptor (1 is stdout) or a stream. */
export type LineDestination = number | LineStream;

/** Linux's PIPE_BUF: a write to a pipe up to this size is never interleaved with another. */
const PIPE_ATOMIC_BYTES = 4096;
/** Largest write into anything but a pipe (sonic-boom's choice too: Docker's log buffer). */
const WRITE_MAX_BYTES = 16 * 1024;
/** Pending text beyond which lines are dropped (about 50 000 access lines). */
const MAX_PENDING_CHARS = 16 * 1024 * 1024;
/** How long a chunk that met EAGAIN waits before it is tried again. */
const RETRY_MS = 10;
/** How long a line may wait for more to fill a write (unless a flush is waiting). */
const FLUSH_MS = 100;

type AsyncWrite = (chunk: Buffer, done: (err: NodeJS.ErrnoException | null, written: number) => void) => void;

/** A non-blocking description of its own for the pipe or character device behind `fd` (Linux), or null. */
function reopenNonBlocking(fd: number): { fd: number; limit: number } | null {
  try {
    const stat = fstatSync(fd);
    if (!stat.isFIFO() && !stat.isCharacterDevice()) return null;
    const own = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    return { fd: own, limit: stat.isFIFO() ? PIPE_ATOMIC_BYTES : WRITE_MAX_BYTES };
  } catch {
    return null;
  }
}

/** Number of lines in `chunk`. */
function countLines(chunk: Buffer): number {
  let lines = 0;
  for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  return lines;
}

/** Writes lines (each ending in "\n") to a destination, off the caller's path. */
export class LineSink {
  /** The descriptor written synchronously (non-blocking), or -1 when writes go through #asyncWrite. */
  readonly #syncFd: number;
  readonly #asyncWrite: AsyncWrite | null;
  /** Largest write, in characters (non-ASCII text may take one a little past it in bytes). */
  readonly #limit: number;
  readonly #droppedLine: (count: number) => string;
  /** Full chunks waiting, oldest at #head; each at most #limit characters of whole lines, or one longer line. */
  #chunks: string[] = [];
  #head = 0;
  #filling = '';
  #pendingChars = 0;
  /** A write is in flight, or one is scheduled (#flushTimer, a retry timer or setImmediate). */
  #busy = false;
  #flushTimer: NodeJS.Timeout | null = null;
  /** The rest of a chunk the destination refused with EAGAIN. */
  #blocked: Buffer | null = null;
  #dropped = 0;
  #droppedUnreported = 0;
  #idle: (() => void)[] = [];

  constructor(destination: LineDestination, droppedLine: (count: number) => string) {
    this.#droppedLine = droppedLine;
    if (typeof destination !== 'number') {
      this.#syncFd = -1;
      this.#limit = WRITE_MAX_BYTES;
      this.#asyncWrite = (chunk, done) => destination.write(chunk, (err) => done(err ?? null, err ? 0 : chunk.length));
      return;
    }
    const own = reopenNonBlocking(destination);
    this.#syncFd = own?.fd ?? -1;
    this.#limit = own?.limit ?? WRITE_MAX_BYTES;
    this.#asyncWrite = own === null ? (chunk, done) => writeAsync(destination, chunk, 0, chunk.length, null, done) : null;
  }

  /** Lines dropped so far because the destination did not keep up (or failed). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues one line (ending in "\n"). */
  push(line: string): void {
    if (this.#pendingChars > MAX_PENDING_CHARS) {
      this.#dropped++;
      this.#droppedUnreported++;
      return;
    }
    this.#pendingChars += line.length;
    // Appending to a short string only: pending text as one long string would be copied whole
    // each time a write takes its first few KiB (quadratic once a backlog forms).
    if (this.#filling.length > 0 && this.#filling.length + line.length > this.#limit) {
      this.#chunks.push(this.#filling);
      this.#filling = line;
      // A full chunk does not wait for the flush timer.
      if (this.#flushTimer !== null) {
        clearTimeout(this.#flushTimer);
        this.#flushTimer = null;
        this.#busy = false;
      }
    } else this.#filling += line;
    if (!this.#busy) {
      this.#busy = true;
      if (this.#head < this.#chunks.length) setImmediate(this.#writeNext);
      else this.#flushTimer = setTimeout(this.#onFlushTimer, FLUSH_MS).unref();
    }
  }

  /** Resolves once every line pushed so far is written, or after `timeoutMs` (a stuck destination must not hold a drain). */
  flush(timeoutMs: number): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    const flushed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs).unref();
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // A partial chunk waiting for its timer goes now (and, while someone waits, every one after it).
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
      this.#writeNext();
    }
    return flushed;
  }

  readonly #onFlushTimer = (): void => {
    this.#flushTimer = null;
    this.#writeNext(true);
  };

  readonly #onRetryTimer = (): void => {
    const chunk = this.#blocked!;
    this.#blocked = null;
    if (this.#syncFd === -1) this.#writeAsync(chunk);
    else if (this.#writeSync(chunk)) this.#writeNext();
  };

  /** Writes chunks while the destination takes them synchronously; an async write continues from its callback. */
  readonly #writeNext = (partialToo = false): void => {
    for (;;) {
      const chunk = this.#take(partialToo);
      if (chunk === null) return;
      if (this.#syncFd === -1) {
        this.#writeAsync(Buffer.from(chunk));
        return;
      }
      if (!this.#writeSync(Buffer.from(chunk))) return;
    }
  };

  /** The next chunk to write: the oldest full one, or the one being filled when its time is up or a flush waits; else null (and the timer armed, or idle). */
  #take(partialToo: boolean): string | null {
    let chunk: string;
    if (this.#head < this.#chunks.length) {
      chunk = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = '';
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      }
    } else if (this.#filling.length > 0 && (partialToo || this.#idle.length > 0)) {
      chunk = this.#filling;
      this.#filling = '';
    } else if (this.#filling.length > 0) {
      this.#flushTimer = setTimeout(this.#onFlushTimer, FLUSH_MS).unref();
      return null;
    } else {
      this.#busy = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
      return null;
    }
    this.#pendingChars -= chunk.length;
    return chunk;
  }

  /** Writes `chunk` now; false when the destination is full (the rest waits for the retry timer). */
  #writeSync(chunk: Buffer): boolean {
    let at = 0;
    while (at < chunk.length) {
      try {
        at += writeSync(this.#syncFd, chunk, at, chunk.length - at);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.#blocked = chunk.subarray(at);
          setTimeout(this.#onRetryTimer, RETRY_MS).unref();
          return false;
        }
        this.#lost(chunk.subarray(at));
        return true;
      }
    }
    this.#wrote();
    return true;
  }

  #writeAsync(chunk: Buffer): void {
    this.#asyncWrite!(chunk, (err, written) => {
      if (err !== null && err.code === 'EAGAIN') {
        this.#blocked = chunk;
        setTimeout(this.#onRetryTimer, RETRY_MS).unref();
        return;
      }
      if (err !== null) this.#lost(chunk);
      else if (written < chunk.length) {
        this.#writeAsync(chunk.subarray(written));
        return;
      } else this.#wrote();
      this.#writeNext();
    });
  }

  /** EPIPE, EBADF...: these lines are lost; count them and go on with the next. */
  #lost(chunk: Buffer): void {
    const lines = countLines(chunk);
    this.#dropped += lines;
    this.#droppedUnreported += lines;
  }

  /** A write worked: if lines were dropped before, say how many (only then, so a destination that keeps failing is not sent a line about it each time). */
  #wrote(): void {
    if (this.#droppedUnreported === 0 || this.#pendingChars > MAX_PENDING_CHARS) return;
    const count = this.#droppedUnreported;
    this.#droppedUnreported = 0;
    this.push(this.#droppedLine(count));
  }
}
