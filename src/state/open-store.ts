// Picks the state store the config asks for, and reports its health the
// same way whichever it is.

import { resolve } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { EtcdSecurity } from './etcd-credentials.ts';
import { EtcdStore } from './etcd-store.ts';
import { FileStore } from './file-store.ts';
import type { StateStore, StoreHealth } from './store.ts';

/**
 * The store of `state` (the file store's path is relative to `baseDir`, the
 * config file's directory); `security` is what readEtcdSecurity read for etcd.
 */
export function openStateStore(state: Config['state'], baseDir: string, log: Logger, security: EtcdSecurity = {}): StateStore {
  if (state.store === 'etcd' && state.etcd !== undefined) {
    return new EtcdStore({ endpoints: state.etcd.endpoints, prefix: state.etcd.prefix, security, log });
  }
  return new FileStore(resolve(baseDir, state.path));
}

/** The store's health for /readyz: `degraded` (serving the last known state) is still ready, `failing` is not. */
export async function storeHealth(store: StateStore): Promise<StoreHealth> {
  if (store.health !== undefined) return store.health();
  const probe = await store.check();
  return probe.ok ? { kind: store.description, status: 'ok' } : { kind: store.description, status: 'failing', error: probe.error };
}
