// `veer validate --config FILE`: every problem with its path and line:column.

import { formatConfigPath, loadConfigFile } from '../config/index.ts';
import { compileTable } from '../table/index.ts';
import { formatIssue, formatSummary } from './format.ts';

/** Validates a config file; returns the exit code (0 valid, 1 invalid). */
export async function runValidate(file: string, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const loaded = await loadConfigFile(file);
  if (!loaded.ok) {
    for (const issue of loaded.issues) err(formatIssue(file, issue));
    err(`${file}: ${loaded.issues.length} error${loaded.issues.length === 1 ? '' : 's'}`);
    return 1;
  }
  const compiled = compileTable(loaded.config);
  if (!compiled.ok) {
    for (const i of compiled.issues) {
      err(formatIssue(file, { code: i.code, path: formatConfigPath(i.path), message: i.message, ...loaded.locate(i.path) }));
    }
    err(`${file}: ${compiled.issues.length} error${compiled.issues.length === 1 ? '' : 's'}`);
    return 1;
  }
  out(formatSummary(file, loaded.config, compiled.table));
  return 0;
}
