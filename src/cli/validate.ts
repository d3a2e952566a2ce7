// `veer validate --config FILE`: every problem with its path and line:column.

import { dirname, resolve } from 'node:path';
import { loadConfigFile, locateIssues, type ConfigIssue } from '../config/index.ts';
import { readEtcdSecurity } from '../state/index.ts';
import { compileTable } from '../table/index.ts';
import { formatIssue, formatSummary } from './format.ts';

/** Validates a config file; returns the exit code (0 valid, 1 invalid). */
export async function runValidate(file: string, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const loaded = await loadConfigFile(file);
  if (!loaded.ok) return reportIssues(file, loaded.issues, err);
  const compiled = compileTable(loaded.config);
  if (!compiled.ok) {
    return reportIssues(file, locateIssues(compiled.issues, loaded.locate), err);
  }
  // The files the config names (etcd's TLS files), read as `veer serve` would.
  const files = readEtcdSecurity(loaded.config.state, dirname(resolve(file)));
  if (!files.ok) return reportIssues(file, locateIssues(files.issues, loaded.locate), err);
  out(formatSummary(file, loaded.config, compiled.table));
  return 0;
}

/** Prints issues in file order (a reader fixes them top to bottom), then the count. */
function reportIssues(file: string, issues: readonly ConfigIssue[], err: (s: string) => void): number {
  const ordered = [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  for (const issue of ordered) err(formatIssue(file, issue));
  err(`${file}: ${issues.length} error${issues.length === 1 ? '' : 's'}`);
  return 1;
}
