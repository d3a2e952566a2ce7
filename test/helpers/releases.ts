// A config of two services (frontend v1/v2, cart v4/v5, sticky on x-user) and one release, checkout-2.3, over them,
// and traffic to both members.

import { admin, startLoad } from './admin.ts';
import type { TestScope } from './http.ts';
import type { RunningVeer } from './veer.ts';

/** Steady traffic to both members (/front and /cart), stopped in teardown at the latest. */
export function loadMembers(t: TestScope, running: RunningVeer) {
  const front = startLoad(`${running.url}/front`, 3);
  const cart = startLoad(`${running.url}/cart`, 3);
  const stop = async () => {
    await front.stop();
    await cart.stop();
  };
  t.teardown(stop);
  return { stop, front, cart };
}

/** Two services and one release over them. */
export function releaseConfig(urls: readonly string[], release: string, top = ''): string {
  return `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
drainTimeout: 1s
${top}
services:
  - name: frontend
    match: { pathPrefix: /front }
    versions:
      - { name: v1, upstream: "${urls[0]}" }
      - { name: v2, upstream: "${urls[1]}", labels: { commit: 3f2a9c1 } }
    split: { weights: { v1: 100, v2: 0 }, sticky: { header: x-user } }
  - name: cart
    match: { pathPrefix: /cart }
    versions:
      - { name: v4, upstream: "${urls[2]}" }
      - { name: v5, upstream: "${urls[3]}", labels: { commit: 3f2a9c1 } }
    split: { weights: { v4: 100, v5: 0 }, sticky: { header: x-user } }
releases:
  - name: checkout-2.3
    services: { frontend: v2, cart: v5 }
${release}`;
}

/** GET /api/v1/releases/checkout-2.3, typed by the test's own view of it. */
export const releaseStatusOf = async <Release>(running: RunningVeer): Promise<Release> => (await admin<Release>(running.adminUrl, 'GET', '/api/v1/releases/checkout-2.3')).body;

/** GET /api/v1/history's lines, typed by the test's own view of them. */
export const historyLinesOf = async <Line>(running: RunningVeer): Promise<Line[]> => (await admin<{ history: Line[] }>(running.adminUrl, 'GET', '/api/v1/history')).body.history;
