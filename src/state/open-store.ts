// Picks the state store the config asks for.

import { resolve } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { EtcdSecurity } from '../config/index.ts';
import { FileStore } from './file-store.ts';
import type { StateStore } from './store.ts';

/**
 * The store of `state` (the file store's path is relative to `baseDir`, the
 * config file's directory); `security` is what readEtcdSecurity read for etcd.
 */
export async function openStateStore(state: Config['state'], baseDir: string, log: Logger, security: EtcdSecurity = {}): Promise<StateStore> {
  if (state.store === 'etcd' && state.etcd !== undefined) {
    // Loaded only when used: the etcd client (gRPC, protobuf) costs a file-store veer about 20 MB and 0.2 s at start.
    const { EtcdStore } = await import('./etcd/store.ts');
    return new EtcdStore({ endpoints: state.etcd.endpoints, prefix: state.etcd.prefix, security, log });
  }
  return new FileStore(resolve(baseDir, state.path));
}
