// The endpoints of one upstream spec and how a request picks one. Today a
// spec's endpoints are its configured URLs, picked round robin; this is the
// seam where DNS-resolved addresses, health checks and outlier ejection
// plug in: the forwarder only ever asks an EndpointSet for the next one.

import type { Dispatcher } from 'undici';

/** One upstream address and the dispatcher (connection pool) that reaches it. */
export interface Endpoint {
  /** `scheme://host:port`. */
  readonly origin: string;
  /** Which pool it is (origin and connect settings): endpoints with the same key share one. */
  readonly poolKey: string;
  readonly dispatcher: Dispatcher;
}

/** The endpoints a version's requests may go to. */
export interface EndpointSet {
  /** Every endpoint, in config order. */
  readonly endpoints: readonly Endpoint[];
  /** HOT PATH. The endpoint for the next request. */
  pick(): Endpoint;
}

/** The configured URLs of a spec, taken in turn. */
export class RoundRobinEndpoints implements EndpointSet {
  readonly endpoints: readonly Endpoint[];
  #next = 0;

  constructor(endpoints: readonly Endpoint[]) {
    if (endpoints.length === 0) throw new RangeError('an endpoint set needs at least one endpoint');
    this.endpoints = endpoints;
  }

  pick(): Endpoint {
    const endpoints = this.endpoints;
    if (endpoints.length === 1) return endpoints[0]!;
    const i = this.#next;
    this.#next = i + 1 === endpoints.length ? 0 : i + 1;
    return endpoints[i]!;
  }
}
