// Flagger `Canary` -> a veer service with the primary and canary Services
// Flagger creates (`NAME-primary`, `NAME-canary`) and its `rollout:` plan:
// stepWeight up to maxWeight (or stepWeights), one check every interval,
// threshold failed checks abort; the builtin metrics request-success-rate and
// request-duration become maxErrorRate and maxP99Ms; webhooks become hooks.

import type { KubernetesOptions, Manifest, ObjectResult } from './types.ts';
import { asArray, asRecord, asString, backendUrl, checkApiVersion, formatDuration, parseGoDuration, readIdentity } from './fields.ts';

const HOOK_TYPES = ['pre-rollout', 'rollout', 'confirm-promotion', 'post-rollout', 'event'];

/** Translates one Canary. */
export function translateFlaggerCanary(manifest: Manifest, options: KubernetesOptions): ObjectResult {
  const report = readIdentity(manifest, 'Canary');
  checkApiVersion(manifest, ['flagger.app/v1beta1'], report);
  const result = (services: Record<string, unknown>[]): ObjectResult => ({ key: report.key, kind: report.kind, object: report.object, services, findings: report.findings });
  const spec = asRecord(manifest.spec);
  if (spec === undefined) {
    report.invalid('spec', 'is required');
    return result([]);
  }
  const target = asString(asRecord(spec.targetRef)?.name);
  if (target === undefined) report.invalid('spec.targetRef.name', 'is required');
  const service = asRecord(spec.service);
  const port = service?.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) report.invalid('spec.service.port', `${port === undefined ? 'is required' : `${JSON.stringify(port)} is not a port number`}`);
  const a = asRecord(spec.analysis) ?? asRecord(spec.canaryAnalysis);
  if (a === undefined) report.invalid('spec.analysis', 'is required');
  if (report.hasErrors || a === undefined) return result([]);
  const analysisAt = spec.analysis !== undefined ? 'spec.analysis' : 'spec.canaryAnalysis';
  for (const key of ['iterations', 'match', 'mirror', 'mirrorWeight', 'primaryReadyThreshold', 'canaryReadyThreshold', 'sessionAffinity', 'stepWeightPromotion', 'alerts']) {
    if (a[key] !== undefined) report.notMapped(`${analysisAt}.${key}`, key === 'iterations' || key === 'match' ? 'A/B testing and blue-green runs (iterations, match) are not mapped; veer reads the weighted canary' : `${key} is not mapped`);
  }
  if (spec.skipAnalysis === true) report.notMapped('spec.skipAnalysis', 'veer always runs the analysis of a plan that has one');
  const interval = typeof a.interval === 'string' ? parseGoDuration(a.interval) : null;
  if (a.interval !== undefined && interval === null) report.invalid(`${analysisAt}.interval`, `${JSON.stringify(a.interval)} is not a duration`);
  const intervalText = interval === null ? '1m' : formatDuration(interval);
  const weights: number[] = [];
  if (a.stepWeights !== undefined) {
    const list = asArray(a.stepWeights);
    if (list === undefined || list.some((w) => typeof w !== 'number' || w < 0 || w > 100)) report.invalid(`${analysisAt}.stepWeights`, 'must be a list of percentages');
    else weights.push(...(list as number[]));
  } else {
    const step = a.stepWeight;
    const max = a.maxWeight ?? 100;
    if (typeof step !== 'number' || step <= 0 || step > 100) report.invalid(`${analysisAt}.stepWeight`, `${step === undefined ? 'is required (or stepWeights)' : `${JSON.stringify(step)} is not a percentage above 0`}`);
    else if (typeof max !== 'number' || max <= 0 || max > 100) report.invalid(`${analysisAt}.maxWeight`, `${JSON.stringify(max)} is not a percentage above 0`);
    else for (let w = step; w <= max + 1e-9; w += step) weights.push(Math.round(w * 1000) / 1000);
  }
  const threshold = a.threshold ?? 1;
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1) report.invalid(`${analysisAt}.threshold`, `${JSON.stringify(threshold)} is not a whole number of at least 1`);
  const analysis: Record<string, unknown> = { interval: intervalText, failureLimit: threshold };
  (asArray(a.metrics) ?? []).forEach((raw, i) => {
    const at = `${analysisAt}.metrics[${i}]`;
    const m = asRecord(raw);
    const name = asString(m?.name);
    const range = asRecord(m?.thresholdRange) ?? {};
    if (m?.templateRef !== undefined) return report.notMapped(at, 'a MetricTemplate is not mapped (use analysis.metrics with a Prometheus query)');
    if (typeof m?.interval === 'string' && parseGoDuration(m.interval) !== interval) report.notMapped(`${at}.interval`, `veer reads each check over the analysis interval (${intervalText}), not ${m.interval}`);
    if (name === 'request-success-rate') {
      if (typeof range.min !== 'number') return report.invalid(`${at}.thresholdRange.min`, 'is required (a success rate in percent)');
      analysis.maxErrorRate = Math.round((100 - range.min) * 1e6) / 1e8;
    } else if (name === 'request-duration') {
      if (typeof range.max !== 'number') return report.invalid(`${at}.thresholdRange.max`, 'is required (milliseconds)');
      analysis.maxP99Ms = range.max;
    } else report.notMapped(at, `metric ${name ?? '(unnamed)'} is not a builtin veer maps (request-success-rate, request-duration)`);
  });
  const hooks: Record<string, unknown>[] = [];
  (asArray(a.webhooks) ?? []).forEach((raw, i) => {
    const at = `${analysisAt}.webhooks[${i}]`;
    const w = asRecord(raw);
    const url = asString(w?.url);
    if (w === undefined || url === undefined) return report.invalid(`${at}.url`, 'is required');
    const type = w.type ?? 'rollout';
    if (typeof type !== 'string' || !HOOK_TYPES.includes(type)) return report.notMapped(`${at}.type`, `webhook type ${JSON.stringify(type)} is not mapped (veer has ${HOOK_TYPES.join(', ')})`);
    const hook: Record<string, unknown> = { type, url };
    if (w.timeout !== undefined) {
      const ms = typeof w.timeout === 'string' ? parseGoDuration(w.timeout) : null;
      if (ms === null) return report.invalid(`${at}.timeout`, `${JSON.stringify(w.timeout)} is not a duration`);
      hook.timeout = formatDuration(ms);
    }
    if (w.metadata !== undefined) report.notMapped(`${at}.metadata`, "veer's hook body carries no metadata; the hook gets the rollout's state instead");
    hooks.push(hook);
  });
  if (report.hasErrors) return result([]);
  const primary = `${target}-primary`;
  const canary = `${target}-canary`;
  const steps: Record<string, unknown>[] = weights.map((weight) => ({ weight, pause: intervalText }));
  if (steps[steps.length - 1]?.weight !== 100) steps.push({ weight: 100 });
  return result([
    {
      name: `${report.namespace}.${report.name}`,
      // A Rollout or Canary names no host: the Service's in-cluster names (set match.hosts to the public ones).
      match: { hosts: [`${report.name}.${report.namespace}`, `${report.name}.${report.namespace}.svc.cluster.local`] },
      versions: [
        { name: primary, upstream: backendUrl(options.backendUrl, primary, report.namespace, port as number) },
        { name: canary, upstream: backendUrl(options.backendUrl, canary, report.namespace, port as number) },
      ],
      split: { weights: { [primary]: 100, [canary]: 0 } },
      rollout: { canary, steps, analysis, ...(hooks.length > 0 && { hooks }) },
    },
  ]);
}
