// Text output of the admin-talking commands: the status table (cli-table3),
// a rollout's detail, an explanation.

import Table from 'cli-table3';
import type { ServiceView } from '../admin/index.ts';
import type { AnalysisResult, RolloutStatus } from '../admin/index.ts';

/** A table without colours, so the output is the same on a terminal, in a pipe and in tests. */
function plainTable(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}

/** `progressing 2/4 (v2 at 25%)`, `paused 2/4 (plan)`, `promoted`, `-`. */
export function describePhase(rollout: RolloutStatus | null): string {
  if (rollout === null) return '-';
  const where = `step ${rollout.step + 1}/${rollout.stepCount}`;
  switch (rollout.phase) {
    case 'progressing':
      return `progressing ${where}\n${rollout.canary} at ${rollout.canaryWeight}%`;
    case 'paused':
      return `paused ${where} (${rollout.pausedBy ?? 'operator'})\n${rollout.canary} at ${rollout.canaryWeight}%`;
    default:
      return `${rollout.phase} (${rollout.canary})`;
  }
}

/** A version's labels in one cell line: `commit=3f2a9c1 image=frontend:2.3.0`, or `-`. */
function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(' ');
}

/** The status table: one row per service, versions and weights one per line; a LABELS column when any version has labels. */
export function formatStatusTable(services: readonly ServiceView[]): string {
  const withLabels = services.some((s) => s.versions.some((v) => Object.keys(v.labels ?? {}).length > 0));
  const table = plainTable(withLabels ? ['SERVICE', 'VERSION', 'LABELS', 'WEIGHT', 'SHARE', 'STICKY', 'ROLLOUT'] : ['SERVICE', 'VERSION', 'WEIGHT', 'SHARE', 'STICKY', 'ROLLOUT']);
  for (const s of services) {
    const sticky = s.sticky ? `${s.sticky.kind}:${s.sticky.name}` : '-';
    let rollout = describePhase(s.rollout);
    if (s.shift !== null) rollout = `shift -> ${s.shift.to} until ${s.shift.until}%\n(+${s.shift.step} every ${s.shift.everyMs}ms)`;
    table.push([
      `${s.name}${s.weightsSource === 'runtime' ? '\n(runtime)' : ''}`,
      s.versions.map((v) => v.name).join('\n'),
      ...(withLabels ? [s.versions.map((v) => formatLabels(v.labels)).join('\n')] : []),
      s.versions.map((v) => String(v.weight)).join('\n'),
      s.versions.map((v) => `${v.percent}%`).join('\n'),
      sticky,
      rollout,
    ]);
  }
  return table.toString();
}

/** One analysis check in a line, then each metric check (value, or the query when inconclusive), each rollout hook, and the reasons. */
export function formatAnalysis(a: AnalysisResult): string {
  const p99 = (v: number | null) => (v === null ? 'n/a' : `${v}ms`);
  const metrics = (a.metrics ?? []).map((m) => `metric ${m.name} = ${m.value ?? 'n/a'}: ${m.verdict.toUpperCase()}${m.verdict === 'inconclusive' ? ` (query: ${m.query})` : ''}`);
  const hooks = (a.hooks ?? []).map((h) => `hook ${h.type} ${h.url}: ${h.ok ? `${h.status}` : (h.error ?? 'failed')} in ${Math.round(h.durationMs)}ms`);
  return `${a.verdict.toUpperCase()} at ${a.at}: canary ${a.canary.requests} req, ${(a.canary.errorRatio * 100).toFixed(2)}% errors, p99 ${p99(a.canary.p99Ms)}; stable ${a.stable.requests} req, ${(a.stable.errorRatio * 100).toFixed(2)}% errors, p99 ${p99(a.stable.p99Ms)}${a.z === null ? '' : `; z=${a.z}`}\n  ${[...metrics, ...hooks, ...a.reasons].join('\n  ')}`;
}

/** A rollout in a few lines: phase, step, weights, why, last analysis. */
export function formatRollout(r: RolloutStatus): string {
  const steps = r.steps.map((s, i) => `${i === r.step ? '[' : ''}${s.weight}%${s.pause ? `/${s.pause}` : ''}${s.analysis ? '+checks' : ''}${i === r.step ? ']' : ''}`).join(' -> ');
  const lines = [
    `rollout of ${r.service}: ${r.phase}${r.pausedBy ? ` (by ${r.pausedBy})` : ''}, canary ${r.canary} at ${r.canaryWeight}%`,
    `  steps:    ${steps}`,
    `  reason:   ${r.reason}`,
  ];
  if (r.nextStepAt) lines.push(`  next step: ${r.nextStepAt}`);
  const spec = r.currentAnalysis ?? r.analysis;
  if (spec) {
    const a = spec;
    const metrics = (a.metrics ?? []).map((m) => `${m.name} in [${m.min ?? '-inf'}, ${m.max ?? '+inf'}]`);
    lines.push(`  analysis: every ${a.intervalMs}ms, minRequests ${a.minRequests}, maxErrorRate ${a.maxErrorRate ?? '-'}, maxP99Ms ${a.maxP99Ms ?? '-'}, failureLimit ${a.failureLimit}${metrics.length > 0 ? `, metrics ${metrics.join(', ')}` : ''}; ${r.consecutiveFailures} failed / ${r.consecutiveInconclusive} inconclusive in a row`);
  }
  if (r.confirmPromotion) {
    const g = r.confirmPromotion;
    lines.push(`  confirm-promotion: asked ${g.asked} time${g.asked === 1 ? '' : 's'} since ${g.since}; ${g.last.map((h) => `${h.url} ${h.ok ? h.status : (h.error ?? 'failed')}`).join(', ')}`);
  }
  if (r.lastAnalysis) lines.push(`  last check: ${formatAnalysis(r.lastAnalysis).replace(/\n/g, '\n  ')}`);
  return lines.join('\n');
}

/** `v1=90 (90%) v2=10 (10%)` */
export function formatWeights(service: ServiceView): string {
  return service.versions.map((v) => `${v.name}=${v.weight} (${v.percent}%)`).join(' ');
}
