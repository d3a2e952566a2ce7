// Replacing workers that die, without a fork loop when one keeps dying right
// after its start (a broken build, a port it cannot bind): a worker that
// lived less than CRASH_WINDOW_MS counts as one more crash in a row for its
// slot, and its replacement waits respawnDelayMs(crashes in a row):
//
//   crashes in a row   1    2       3       4      ...   >= 9
//   delay              0    250 ms  500 ms  1 s    ...   30 s

/** A worker that lived less than this (ms) counts as a crash in a row for the backoff. */
export const CRASH_WINDOW_MS = 10_000;

/** Delay before replacing a worker that died `crashesInARow` times in a row shortly after its start. */
export function respawnDelayMs(crashesInARow: number): number {
  if (crashesInARow <= 1) return 0;
  return Math.min(30_000, 250 * 2 ** (crashesInARow - 2));
}

/** Crashes in a row per worker slot, and the replacements waiting for their delay. */
export class RespawnSchedule {
  readonly #crashes: number[];
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(slots: number) {
    this.#crashes = new Array<number>(slots).fill(0);
  }

  /** Counts the exit of `slot`'s worker after `livedMs` and calls `fork` once the backoff has passed; returns the delay. */
  schedule(slot: number, livedMs: number, fork: () => void): number {
    this.#crashes[slot] = livedMs < CRASH_WINDOW_MS ? this.#crashes[slot]! + 1 : 1;
    const delayMs = respawnDelayMs(this.#crashes[slot]!);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fork();
    }, delayMs);
    this.#timers.add(timer);
    return delayMs;
  }

  /** Drops every replacement still waiting (the pool drains). */
  cancel(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
