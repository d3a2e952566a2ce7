// The `releases` section: checks the schema cannot express, and what a
// release changes in its members' splits.
//
// One cohort across services: every member hashes the sticky key with the
// release's seed (one bucket per user, the same in every member), and every
// member's split puts the release's canary LAST, so with the canary at W%
// and the rest on the other versions the canary owns the top buckets
//
//   bucket:  0 ............................ 10000-W*100 .. 9999
//   frontend [ v1 (stable)                 | v2 (canary)      ]
//   cart     [ v4 (stable)                 | v5 (canary)      ]
//
// in every member: a user is on every member's canary or on none.

import type { Config } from '../config/index.ts';
import { checkRollbackWindow, checkRunChecks } from './compile-rollout.ts';
import type { Path, Report } from './compile-service.ts';

/** What a release changes in one member's split. */
export interface ReleaseMembership {
  readonly release: string;
  readonly canary: string;
  readonly seed: string;
}

/** The release holding `service` in `config`, if any (the first that names it; a second is refused by checkReleases). */
export function releaseMembership(config: Config, service: string): ReleaseMembership | null {
  for (const r of config.releases ?? []) {
    const canary = r.services[service];
    if (canary !== undefined) return { release: r.name, canary, seed: r.seed ?? r.name };
  }
  return null;
}

/** Reports every problem of `releases`: unknown members and canaries, a service in two releases, members with different sticky keys, metric checks and hooks as a rollout's. */
export function checkReleases(config: Config, report: Report): void {
  const byName = new Map(config.services.map((s) => [s.name, s]));
  const names = new Map<string, number>();
  const holder = new Map<string, string>();
  (config.releases ?? []).forEach((release, ri) => {
    const base: Path = ['releases', ri];
    if (names.has(release.name)) report('invalid_release', [...base, 'name'], `release name "${release.name}" is used twice`);
    names.set(release.name, ri);
    checkRunChecks(release, base, report);
    checkRollbackWindow(release.rollbackWindow, base, report);
    let sticky: string | undefined;
    for (const [service, canary] of Object.entries(release.services)) {
      const at: Path = [...base, 'services', service];
      const spec = byName.get(service);
      if (spec === undefined) {
        report('unknown_service', at, `"${service}" is not a service (services: ${[...byName.keys()].join(', ')})`, true);
        continue;
      }
      if (!spec.versions.some((v) => v.name === canary)) {
        report('unknown_version', at, `"${canary}" is not a version of service ${service} (versions: ${spec.versions.map((v) => v.name).join(', ')})`);
      } else if (spec.versions.length < 2) {
        report('invalid_release', at, `service ${service} has one version: a release needs the canary and a stable one`);
      }
      const other = holder.get(service);
      if (other !== undefined) report('invalid_release', at, `service ${service} is already in release ${other}; a service can be in one release only`, true);
      else holder.set(service, release.name);
      // One cohort needs one key: members hash the same sticky source (or none: then every request draws anew).
      const source = JSON.stringify(spec.split?.sticky ?? null);
      if (sticky === undefined) sticky = source;
      else if (source !== sticky) report('invalid_release', at, `service ${service} takes its sticky key from ${describe(source)}, another member from ${describe(sticky)}: members of a release must share the sticky key`, true);
    }
  });
}

function describe(json: string): string {
  const sticky = JSON.parse(json) as Record<string, string> | null;
  if (sticky === null) return 'nowhere (no sticky key)';
  const [kind, name] = Object.entries(sticky)[0]!;
  return `${kind} ${name}`;
}
