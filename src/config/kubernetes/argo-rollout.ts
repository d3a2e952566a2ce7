// Argo Rollouts `Rollout` (canary strategy) -> a veer service with a stable
// and a canary version and its `rollout:` plan. `setWeight` becomes a step's
// weight, the `pause` after it the step's pause (`pause: {}` waits for
// `veer rollout resume`: `forever`). An AnalysisTemplate is carried over when
// it is simple: Prometheus queries with a one-sided `result[0] <op> N` success
// condition and no arguments; anything else is reported.

import type { KubernetesOptions, Manifest, ObjectResult } from './types.ts';
import { ObjectReport, asArray, asRecord, asString, backendUrl, checkApiVersion, formatDuration, parseGoDuration, readIdentity } from './fields.ts';

/** AnalysisTemplates (and ClusterAnalysisTemplates) by name. */
export type AnalysisTemplates = ReadonlyMap<string, Manifest>;

/** Translates one Rollout. */
export function translateArgoRollout(manifest: Manifest, options: KubernetesOptions, templates: AnalysisTemplates): ObjectResult {
  const report = readIdentity(manifest, 'Rollout');
  checkApiVersion(manifest, ['argoproj.io/v1alpha1'], report);
  const result = (services: Record<string, unknown>[]): ObjectResult => ({ key: report.key, kind: report.kind, object: report.object, services, findings: report.findings });
  const spec = asRecord(manifest.spec);
  const strategy = asRecord(spec?.strategy);
  if (spec === undefined) {
    report.invalid('spec', 'is required');
    return result([]);
  }
  if (strategy?.blueGreen !== undefined) {
    report.notMapped('spec.strategy.blueGreen', 'a blue-green Rollout is not mapped; veer import reads the canary strategy');
    return result([]);
  }
  const canary = asRecord(strategy?.canary);
  if (canary === undefined) {
    report.invalid('spec.strategy.canary', 'is required');
    return result([]);
  }
  const stableName = asString(canary.stableService) ?? `${report.name}-stable`;
  const canaryName = asString(canary.canaryService) ?? `${report.name}-canary`;
  const port = containerPort(spec) ?? 80;
  for (const key of ['trafficRouting', 'maxSurge', 'maxUnavailable', 'scaleDownDelaySeconds', 'dynamicStableScale', 'abortScaleDownDelaySeconds', 'antiAffinity', 'canaryMetadata', 'stableMetadata']) {
    if (key === 'trafficRouting' && canary[key] !== undefined) report.notMapped('spec.strategy.canary.trafficRouting', 'veer is the traffic router: the plan is carried over, the router settings are not');
    else if (key !== 'trafficRouting' && canary[key] !== undefined) report.notMapped(`spec.strategy.canary.${key}`, 'a replica setting: veer moves traffic, not pods');
  }
  const steps: Record<string, unknown>[] = [];
  const analysis: Record<string, unknown> = {};
  const metrics: Record<string, unknown>[] = [];
  const rawSteps = asArray(canary.steps) ?? [];
  rawSteps.forEach((raw, i) => {
    const at = `spec.strategy.canary.steps[${i}]`;
    const step = asRecord(raw);
    if (step === undefined) return report.invalid(at, 'must be a mapping');
    if (step.setWeight !== undefined) {
      const w = step.setWeight;
      if (typeof w !== 'number' || w < 0 || w > 100) return report.invalid(`${at}.setWeight`, `${JSON.stringify(w)} is not a percentage`);
      steps.push({ weight: w });
      return;
    }
    if (step.pause !== undefined) {
      const pause = asRecord(step.pause);
      const last = steps[steps.length - 1];
      if (last === undefined) {
        report.notMapped(`${at}.pause`, 'a pause before the first setWeight is not mapped (veer starts at the first step)');
        return;
      }
      if (pause === undefined || pause.duration === undefined) last.pause = 'forever';
      else {
        const d = pause.duration;
        const ms = typeof d === 'number' ? d * 1000 : typeof d === 'string' ? (/^[0-9]+$/.test(d) ? Number(d) * 1000 : parseGoDuration(d)) : null;
        if (ms === null) return report.invalid(`${at}.pause.duration`, `${JSON.stringify(d)} is not a duration`);
        last.pause = formatDuration(ms);
      }
      return;
    }
    if (step.analysis !== undefined) {
      const found = readTemplates(asRecord(step.analysis), `${at}.analysis`, report, templates, analysis);
      if (found !== null) {
        const last = steps[steps.length - 1];
        if (last === undefined) metrics.push(...found);
        else last.analysis = { metrics: found };
      }
      return;
    }
    report.notMapped(at, `step ${Object.keys(step).join(', ')} is not mapped (veer reads setWeight, pause and analysis)`);
  });
  if (canary.analysis !== undefined) {
    const found = readTemplates(asRecord(canary.analysis), 'spec.strategy.canary.analysis', report, templates, analysis);
    if (found !== null) metrics.push(...found);
  }
  if (report.hasErrors) return result([]);
  const lastWeight = steps[steps.length - 1]?.weight;
  if (lastWeight !== 100) steps.push({ weight: 100 }); // Argo promotes to 100% after the last step
  if (metrics.length > 0) analysis.metrics = metrics;
  const name = `${report.namespace}.${report.name}`;
  const rollout = { canary: canaryName, steps, ...(Object.keys(analysis).length > 0 && { analysis }) };
  return result([
    {
      name,
      // A Rollout or Canary names no host: the Service's in-cluster names (set match.hosts to the public ones).
      match: { hosts: [`${report.name}.${report.namespace}`, `${report.name}.${report.namespace}.svc.cluster.local`] },
      versions: [
        { name: stableName, upstream: backendUrl(options.backendUrl, stableName, report.namespace, port) },
        { name: canaryName, upstream: backendUrl(options.backendUrl, canaryName, report.namespace, port) },
      ],
      split: { weights: { [stableName]: 100, [canaryName]: 0 } },
      rollout,
    },
  ]);
}

function containerPort(spec: Record<string, unknown>): number | undefined {
  const containers = asArray(asRecord(asRecord(spec.template)?.spec)?.containers) ?? [];
  const port = asRecord(asArray(asRecord(containers[0])?.ports)?.[0])?.containerPort;
  return typeof port === 'number' ? port : undefined;
}

/** The simple metrics of the templates a Rollout names; null (with findings) when one is not simple. */
function readTemplates(ref: Record<string, unknown> | undefined, at: string, report: ObjectReport, templates: AnalysisTemplates, analysis: Record<string, unknown>): Record<string, unknown>[] | null {
  const names = (asArray(ref?.templates) ?? []).map((t) => asString(asRecord(t)?.templateName));
  if (names.length === 0) {
    report.invalid(`${at}.templates`, 'must name at least one template');
    return null;
  }
  if (ref?.args !== undefined) {
    report.notMapped(`${at}.args`, 'template arguments are not mapped; veer fills {{service}}, {{canary}}, {{stable}} and {{interval}} itself');
    return null;
  }
  const out: Record<string, unknown>[] = [];
  for (const [i, name] of names.entries()) {
    const template = name === undefined ? undefined : templates.get(name);
    if (template === undefined) {
      report.notMapped(`${at}.templates[${i}]`, `AnalysisTemplate ${name ?? '(unnamed)'} is not among the files read`);
      return null;
    }
    const metrics = asArray(asRecord(template.spec)?.metrics) ?? [];
    for (const [mi, raw] of metrics.entries()) {
      const m = asRecord(raw);
      const field = `${at}.templates[${i}] (AnalysisTemplate ${name} spec.metrics[${mi}])`;
      const prometheus = asRecord(asRecord(m?.provider)?.prometheus);
      const query = asString(prometheus?.query);
      if (m === undefined || prometheus === undefined || query === undefined) {
        report.notMapped(field, 'only Prometheus metrics are mapped');
        return null;
      }
      if (query.includes('{{')) {
        report.notMapped(field, 'a query with template arguments is not mapped');
        return null;
      }
      const bound = /^\s*result\[0\]\s*(>=|>|<=|<)\s*(-?[0-9.]+)\s*$/.exec(String(m.successCondition ?? ''));
      if (bound === null) {
        report.notMapped(`${field}.successCondition`, `${JSON.stringify(m.successCondition)} is not mapped (veer reads result[0] >= N or result[0] <= N)`);
        return null;
      }
      const address = asString(prometheus.address);
      if (address !== undefined) analysis.prometheus = { address };
      const interval = typeof m.interval === 'string' ? parseGoDuration(m.interval) : null;
      if (interval !== null) analysis.interval = formatDuration(interval);
      if (typeof m.failureLimit === 'number' && m.failureLimit >= 1) analysis.failureLimit = m.failureLimit;
      const limit = Number(bound[2]);
      out.push({ name: asString(m.name) ?? `metric-${mi}`, query, ...(bound[1]!.startsWith('>') ? { min: limit } : { max: limit }) });
    }
  }
  return out;
}
