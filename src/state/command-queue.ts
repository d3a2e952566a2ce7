// Runs async commands one at a time, in arrival order. Each command sees the
// state the previous one left, so concurrent conflicting changes end in
// exactly one of them, never a mix:
//
//   run(a) ─┐
//   run(b) ─┼─> tail: a ──> b ──> c      (a failure does not stop the chain)
//   run(c) ─┘

/** A FIFO mutex for async work. */
export class CommandQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** Number of commands queued or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Runs `task` after every task queued before it has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(task);
    this.#tail = result.then(
      () => this.#pending--,
      () => this.#pending--,
    );
    return result;
  }
}
