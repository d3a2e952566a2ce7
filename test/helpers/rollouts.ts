// Reading a running veer's rollout of service `svc` (serviceConfig's service): the weights
// the data plane serves, the rollout as the API shows it, and the history.

import { admin } from './admin.ts';
import type { RunningVeer } from './veer.ts';

/** The weights the published table serves now (no API round trip: the moment a change is applied). */
export const weightsOf = (running: RunningVeer, service = 'svc') => running.veer.state.table.servicesByName.get(service)!.split.weights;

/** GET /api/v1/services/{service}/rollout, typed by the test's own view of it. */
export const rolloutOf = async <Rollout>(running: RunningVeer, service = 'svc'): Promise<Rollout> => (await admin<Rollout>(running.adminUrl, 'GET', `/api/v1/services/${service}/rollout`)).body;

/** GET /api/v1/history, typed by the test's own view of an entry. */
export const historyOf = async <Entry>(running: RunningVeer): Promise<Entry[]> => (await admin<{ history: Entry[] }>(running.adminUrl, 'GET', '/api/v1/history')).body.history;
