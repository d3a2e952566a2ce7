// Active health checks: every `interval`, a GET of `path` on each endpoint
// of a set, through the endpoint's own pool; 2xx and 3xx pass, anything
// else (a 5xx, a refused connection, no answer within `timeout`) fails.
// `unhealthyAfter` failures in a row take an endpoint out of rotation and
// `healthyAfter` passes bring it back (Envoy's and nginx plus's model).
// Checks start with the set, that is with the version's first request, and
// an endpoint is in rotation until its checks say otherwise.

import type { Dispatcher } from 'undici';
import type { HealthPolicy } from '../table/index.ts';
import type { Endpoint, EndpointSet } from './endpoints.ts';

type DispatchController = Dispatcher.DispatchController;

/** One check: resolves with the status (0 when it failed before an answer). */
function check(endpoint: Endpoint, policy: HealthPolicy): Promise<number> {
  return new Promise((resolve) => {
    let status = 0;
    const timer = setTimeout(() => controller?.abort(new Error('health check timed out')), policy.timeoutMs);
    let controller: DispatchController | null = null;
    const done = (value: number) => {
      clearTimeout(timer);
      resolve(value);
    };
    endpoint.dispatcher.dispatch(
      { path: policy.path, method: 'GET', headers: { 'user-agent': 'veer-health-check' }, headersTimeout: policy.timeoutMs, bodyTimeout: policy.timeoutMs },
      {
        onRequestStart(c: DispatchController) {
          controller = c;
        },
        onResponseStart(_c: DispatchController, statusCode: number) {
          if (statusCode >= 200) status = statusCode;
        },
        onResponseData() {},
        onResponseEnd() {
          done(status);
        },
        onResponseError() {
          done(0);
        },
      },
    );
  });
}

/** Checks every endpoint of `set` on an interval until stopped. */
export class HealthChecker {
  readonly #timer: NodeJS.Timeout;
  readonly #running = new Set<Endpoint>();

  constructor(set: EndpointSet, policy: HealthPolicy) {
    const round = () => {
      for (const endpoint of set.endpoints) {
        // A check still waiting (a slow endpoint) is not doubled.
        if (this.#running.has(endpoint)) continue;
        this.#running.add(endpoint);
        void check(endpoint, policy).then((status) => {
          this.#running.delete(endpoint);
          set.reportCheck(endpoint, status >= 200 && status < 400, policy.unhealthyAfter, policy.healthyAfter);
        });
      }
    };
    round();
    this.#timer = setInterval(round, policy.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
