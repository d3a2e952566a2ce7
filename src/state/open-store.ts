// Picks the state store the config asks for.

import { resolve } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { EtcdSecurity } from '../config/index.ts';
import { EtcdStore } from './etcd/store.ts';
import { FileStore } from './file-store.ts';
import type { StateStore } from './store.ts';

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
