// What the forwarder keeps per version of a service with `resilience`: the
// requests in flight (for maxInFlight) and a retry budget over the last 10 s.
//
// The budget is Linkerd's and Envoy's answer to retry storms: retries may not
// exceed `budget` times the requests of the window, so an upstream that fails
// everything gets at most 1 + budget times its traffic, never attempts + 1
// times. A floor of MIN_RETRIES per window lets a quiet service retry at all.

/** Retries allowed in any window, whatever the traffic (Linkerd's minRetriesPerSecond, per 10 s). */
export const MIN_RETRIES = 10;
const SLOTS = 10;

export class VersionGuard {
  inFlight = 0;
  readonly #requests = new Uint32Array(SLOTS);
  readonly #retries = new Uint32Array(SLOTS);
  /** The second the current slot counts. */
  #second = -1;

  /** Counts a request arriving at `nowMs` (performance.now()). */
  noteRequest(nowMs: number): void {
    this.#rotate(nowMs);
    this.#requests[this.#second % SLOTS]!++;
  }

  /** Takes a retry out of the budget when there is one left; false when the budget is spent. */
  takeRetry(nowMs: number, budget: number): boolean {
    this.#rotate(nowMs);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    if (retries >= Math.max(MIN_RETRIES, budget * requests)) return false;
    this.#retries[this.#second % SLOTS]!++;
    return true;
  }

  #rotate(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.#second) return;
    // Clear the slots of the seconds that passed (all of them after a long quiet).
    const gap = this.#second < 0 ? SLOTS : Math.min(second - this.#second, SLOTS);
    for (let k = 1; k <= gap; k++) {
      const i = (this.#second + k) % SLOTS;
      this.#requests[i] = 0;
      this.#retries[i] = 0;
    }
    this.#second = second;
  }
}
