// Text output of the CLI: config issues and summaries.

import type { Config, ConfigIssue } from '../config/index.ts';
import type { ConfigCheck } from '../main.ts';

/** `veer.yaml:12:7 services[0].split.weights: "v3" is not a version ... [unknown_version]` */
export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${file}:${issue.line}:${issue.column}` : file;
  return `${where} ${issue.path}: ${issue.message} [${issue.code}]`;
}

/** A short human summary of a valid config. */
export function formatSummary(file: string, config: Config, table: Extract<ConfigCheck, { ok: true }>['table']): string {
  const lines = [`${file} is valid: ${table.services.length} service${table.services.length === 1 ? '' : 's'}, listen ${config.listen}, admin ${config.admin.listen}`];
  for (const service of table.services) {
    const hosts = service.hosts ? service.hosts.join(',') : '*';
    const split = service.split.versions.map((v, i) => `${v.name}=${service.split.percents[i]}%`).join(' ');
    const sticky = service.split.sticky ? ` sticky ${service.split.sticky.kind}:${service.split.sticky.name}` : '';
    const rules = service.rules.length ? ` ${service.rules.length} rule${service.rules.length === 1 ? '' : 's'}` : '';
    lines.push(`  ${service.name}  ${hosts}${service.pathPrefix}  ${split}${sticky}${rules}${service.rollout ? ` rollout(canary ${service.rollout.canary})` : ''}`);
  }
  return lines.join('\n');
}
