// The endpoints of one upstream spec and how a request picks one: round
// robin over the configured URLs, skipping endpoints that passive outlier
// detection took out of rotation. The forwarder only ever asks an
// EndpointSet for the next endpoint and tells it how each try went; DNS
// resolution and active health checks plug in here.
//
// Ejection, as Envoy's outlier detection does it: `consecutiveErrors`
// failures in a row (connect, reset, timeout or a 5xx answer) take an
// endpoint out for `baseEjection`, the n-th ejection in a row for n times
// that (at most 300 s); it comes back by itself when the time is up, and one
// success clears its record. No endpoint is ejected while `maxEjectedPercent`
// of the set is out already, except that one endpoint may always go: a
// version whose only pod is down is then failed over at once instead of
// making every request wait for its connect to fail.

import type { Dispatcher } from 'undici';
import type { OutlierPolicy } from '../table/index.ts';

/** One upstream address and the dispatcher (connection pool) that reaches it. */
export interface Endpoint {
  /** `scheme://host:port`. */
  readonly origin: string;
  /** Which pool it is (origin and connect settings): endpoints with the same key share one. */
  readonly poolKey: string;
  readonly dispatcher: Dispatcher;
  /** False while outlier detection keeps it out of rotation. */
  readonly up: boolean;
}

/** Where an exchange that never reached an endpoint (shed, or none live) says it went. */
export const NO_ENDPOINT: Endpoint = Object.freeze({
  origin: '-',
  poolKey: '',
  up: false,
  get dispatcher(): Dispatcher {
    throw new Error('no endpoint to dispatch to');
  },
});

/** The endpoints a version's requests may go to. */
export interface EndpointSet {
  /** Every endpoint, in config order. */
  readonly endpoints: readonly Endpoint[];
  /** HOT PATH. The endpoint for the next request; null only when an ejection policy took every endpoint out. */
  pick(): Endpoint | null;
  /** For a retry: a live endpoint other than `failed` when there is one, else `failed` if it is still live, else null. */
  pickAfter(failed: Endpoint): Endpoint | null;
  /** How a try on `endpoint` went; counts towards ejection (nothing without an ejection policy). */
  report(endpoint: Endpoint, failed: boolean): void;
  /** How an active health check of `endpoint` went: `unhealthyAfter` failures take it out, `healthyAfter` passes bring it back. */
  reportCheck(endpoint: Endpoint, passed: boolean, unhealthyAfter: number, healthyAfter: number): void;
  /** Stops the ejection timers (the set is no longer used). */
  close(): void;
}

/** Longest ejection, whatever the base and the count (Envoy's default max_ejection_time). */
const MAX_EJECTION_MS = 300_000;

/** An endpoint, its outlier record and its health. */
class EndpointState implements Endpoint {
  readonly origin: string;
  readonly poolKey: string;
  readonly dispatcher: Dispatcher;
  /** In rotation: neither ejected nor failing its health checks. */
  up = true;
  ejected = false;
  unhealthy = false;
  /** Failures in a row. */
  consecutive = 0;
  /** Ejections in a row (without a success between them). */
  ejections = 0;
  /** Health checks in a row with the same outcome: > 0 passed, < 0 failed. */
  checks = 0;
  timer: NodeJS.Timeout | null = null;

  constructor(origin: string, poolKey: string, dispatcher: Dispatcher) {
    this.origin = origin;
    this.poolKey = poolKey;
    this.dispatcher = dispatcher;
  }
}

/** Announces an endpoint going out of rotation or coming back. */
export type EndpointListener = (endpoint: Endpoint, up: boolean) => void;

/** The configured URLs of a spec, taken in turn, skipping ejected ones. */
export class RoundRobinEndpoints implements EndpointSet {
  endpoints: readonly EndpointState[];
  readonly #outlier: OutlierPolicy | null;
  readonly #onChange: EndpointListener | null;
  #next = 0;
  /** Endpoints out of rotation (ejected or unhealthy): while 0, pick() is plain round robin. */
  #down = 0;

  constructor(endpoints: readonly { origin: string; poolKey: string; dispatcher: Dispatcher }[], outlier: OutlierPolicy | null = null, onChange: EndpointListener | null = null) {
    if (endpoints.length === 0) throw new RangeError('an endpoint set needs at least one endpoint');
    this.endpoints = endpoints.map((e) => new EndpointState(e.origin, e.poolKey, e.dispatcher));
    this.#outlier = outlier;
    this.#onChange = onChange;
  }

  pick(): Endpoint | null {
    const endpoints = this.endpoints;
    const n = endpoints.length;
    if (this.#down === 0) {
      if (n === 1) return endpoints[0]!;
      const i = this.#next;
      this.#next = i + 1 === n ? 0 : i + 1;
      return endpoints[i]!;
    }
    for (let k = 0; k < n; k++) {
      const i = this.#next;
      this.#next = i + 1 === n ? 0 : i + 1;
      if (endpoints[i]!.up) return endpoints[i]!;
    }
    return null;
  }

  pickAfter(failed: Endpoint): Endpoint | null {
    for (let k = 0; k < this.endpoints.length; k++) {
      const next = this.pick();
      if (next === null) return null;
      if (next !== failed) return next;
    }
    return failed.up ? failed : null;
  }

  report(endpoint: Endpoint, failed: boolean): void {
    const policy = this.#outlier;
    if (policy === null || endpoint === NO_ENDPOINT) return;
    const state = endpoint as EndpointState;
    if (!failed) {
      if (state.consecutive !== 0 || state.ejections !== 0) state.consecutive = state.ejections = 0;
      return;
    }
    if (state.ejected || ++state.consecutive < policy.consecutiveErrors) return;
    // Envoy's rule: eject while the share out is below the cap (so one endpoint may always go).
    let ejected = 0;
    for (const e of this.endpoints) if (e.ejected) ejected++;
    if (ejected * 100 >= policy.maxEjectedPercent * this.endpoints.length) return;
    state.consecutive = 0;
    state.ejections++;
    state.ejected = true;
    this.#refresh(state);
    const ms = Math.min(policy.baseEjectionMs * state.ejections, MAX_EJECTION_MS);
    state.timer = setTimeout(() => {
      state.timer = null;
      state.ejected = false;
      this.#refresh(state);
    }, ms).unref();
  }

  reportCheck(endpoint: Endpoint, passed: boolean, unhealthyAfter: number, healthyAfter: number): void {
    const state = endpoint as EndpointState;
    state.checks = passed ? Math.max(state.checks, 0) + 1 : Math.min(state.checks, 0) - 1;
    if (state.unhealthy ? state.checks >= healthyAfter : state.checks <= -unhealthyAfter) {
      state.unhealthy = !state.unhealthy;
      this.#refresh(state);
    }
  }

  /** Recomputes whether `state` is in rotation, and tells the listener when that changed. */
  #refresh(state: EndpointState): void {
    const up = !state.ejected && !state.unhealthy;
    if (up === state.up) return;
    state.up = up;
    this.#down += up ? -1 : 1;
    this.#onChange?.(state, up);
  }

  /**
   * Replaces the endpoints (DNS answered other addresses): those that stay
   * keep their outlier record, new ones start in rotation, gone ones stop.
   */
  setEndpoints(next: readonly { origin: string; poolKey: string; dispatcher: Dispatcher }[]): void {
    if (next.length === 0) return;
    const kept = new Map(this.endpoints.map((e) => [e.poolKey, e]));
    const endpoints = next.map((e) => {
      const state = kept.get(e.poolKey);
      kept.delete(e.poolKey);
      return state ?? new EndpointState(e.origin, e.poolKey, e.dispatcher);
    });
    for (const gone of kept.values()) if (gone.timer !== null) clearTimeout(gone.timer);
    this.endpoints = endpoints;
    this.#down = endpoints.filter((e) => !e.up).length;
    if (this.#next >= endpoints.length) this.#next = 0;
  }

  close(): void {
    for (const e of this.endpoints) if (e.timer !== null) clearTimeout(e.timer);
  }
}
