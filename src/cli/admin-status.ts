// `veer status [SERVICE]`: services, versions, weights, sticky key and
// rollout phase as a table; with a SERVICE, its rollout in detail too.

import type { ServiceView } from '../admin/index.ts';
import { callAdmin } from './admin-client.ts';
import { formatRollout, formatStatusTable } from './admin-format.ts';
import { targetOf, type AdminFlags, type CommandIO } from './admin-io.ts';

/** Prints the status table; returns the exit code. */
export async function runStatus(flags: AdminFlags, service: string | undefined, io: CommandIO): Promise<number> {
  const target = targetOf(flags);
  const services = service === undefined ? (await callAdmin<{ services: ServiceView[] }>(target, 'GET', '/api/v1/services')).services : [await callAdmin<ServiceView>(target, 'GET', `/api/v1/services/${encodeURIComponent(service)}`)];
  if (flags.json) {
    io.out(JSON.stringify(service === undefined ? { services } : services[0], null, 2));
    return 0;
  }
  io.out(formatStatusTable(services));
  if (service !== undefined && services[0]?.rollout) io.out(formatRollout(services[0].rollout));
  return 0;
}
