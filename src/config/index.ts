// Owns: reading the YAML config, ${VAR} substitution, schema validation, defaults -> frozen plain data.
// Must not touch: sockets, timers, runtime objects (tables, pools, state).

export { ConfigSchema, Duration } from './schema.ts';
export type { Config, EtcdStoreConfig, ServiceConfig, ValueMatcherConfig, StickyKeyConfig, RolloutConfig } from './schema.ts';
export { loadConfigFile, parseConfigText, formatConfigPath, deepFreeze, locateIssues } from './load.ts';
export type { ConfigIssue, ConfigLoadResult, ConfigPath, Locate, PathIssue } from './load.ts';
export { parseDuration, parseListenAddress, isLoopbackHost } from './units.ts';
export type { ListenAddress } from './units.ts';
export { watchConfigFile } from './watch.ts';
export type { ConfigWatcher } from './watch.ts';
