// `veer validate --config FILE`: every problem with its path and line:column.

import type { ConfigIssue } from '../config/index.ts';
import type { checkConfigFile as CheckConfigFile } from '../main.ts';
import { formatIssue, formatSummary } from './format.ts';

/** Validates a config file as `veer serve` would at start (and the files it names); returns the exit code (0 valid, 1 invalid). */
export async function runValidate(file: string, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  // Loaded on use: the other commands need none of veer's rooms.
  const { checkConfigFile } = (await import('../main.ts')) as { checkConfigFile: typeof CheckConfigFile };
  const checked = await checkConfigFile(file);
  if (!checked.ok) return reportIssues(file, checked.issues, err);
  out(formatSummary(file, checked.config, checked.table));
  return 0;
}

/** Prints issues in file order (a reader fixes them top to bottom), then the count. */
function reportIssues(file: string, issues: readonly ConfigIssue[], err: (s: string) => void): number {
  const ordered = [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  for (const issue of ordered) err(formatIssue(file, issue));
  err(`${file}: ${issues.length} error${issues.length === 1 ? '' : 's'}`);
  return 1;
}
