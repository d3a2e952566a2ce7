// Owns: config sources (the YAML file, watched), ${VAR} substitution, schema validation, defaults -> frozen plain data; the PEM files a config names.
// Must not touch: sockets, runtime objects (tables, pools, state); its only timer is the watcher's debounce.

export { ConfigSchema, Duration } from './schema.ts';
export type { Config, EtcdStoreConfig, ServiceConfig, ValueMatcherConfig, StickyKeyConfig, RolloutConfig, ReleaseConfig, RolloutHookConfig, MetricCheckConfig, PrometheusConfig } from './schema.ts';
export type { HttpRuleConfig, RuleMatchConfig, NamedMatchConfig, RuleFilterConfig, HeaderModifierConfig, PathModifierConfig } from './rule-schema.ts';
export { loadConfigFile, parseConfigText, formatConfigPath, deepFreeze, locateIssues } from './load.ts';
export type { ConfigIssue, ConfigLoadResult, ConfigPath, Locate, PathIssue } from './load.ts';
export { parseDuration, parseListenAddress, isLoopbackHost } from './units.ts';
export type { ListenAddress } from './units.ts';
export { readEtcdSecurity, readPemFile, checkTlsUsable } from './pem-files.ts';
export type { EtcdSecurity, EtcdSecurityResult } from './pem-files.ts';
export { watchConfigFile } from './watch.ts';
export { FileConfigSource, restartOnlyChanges } from './source.ts';
export type { ConfigSource } from './source.ts';
export type { ConfigWatcher } from './watch.ts';
export { translateManifests, objectKey, readManifests, checkService, nothingTaken, takeService, DEFAULT_KUBERNETES } from './kubernetes/index.ts';
export type { Finding, KubernetesOptions, Manifest, ObjectResult, ServiceDoc } from './kubernetes/index.ts';
