// Argo Rollouts `Rollout` and Flagger `Canary` -> a service and its
// `rollout:` plan, from the projects' own examples, and what is reported.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_KUBERNETES, checkService, nothingTaken, translateManifests, type Manifest } from '../../../src/config/index.ts';
import { ROOT } from '../../helpers/veer.ts';

function fixture(name: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'test', 'fixtures', 'kubernetes', name), 'utf8')).map((d) => d.toJS() as Manifest);
}

t.test("Argo's rollouts-demo: setWeight and pause become steps (pause: {} waits forever), ending at 100", async (t) => {
  const [r] = translateManifests(fixture('argo-rollouts-demo.yaml'), DEFAULT_KUBERNETES).results;
  t.same(r!.findings, []);
  const service = r!.services[0]!;
  t.equal(checkService(service, nothingTaken()), null, 'a valid veer service');
  t.same(service.rollout, {
    canary: 'rollouts-demo-canary',
    steps: [
      { weight: 20, pause: 'forever' },
      { weight: 40, pause: '10s' },
      { weight: 60, pause: '10s' },
      { weight: 80, pause: '10s' },
      { weight: 100 },
    ],
  });
  t.same(service.versions, [
    { name: 'rollouts-demo-stable', upstream: 'http://rollouts-demo-stable.default.svc.cluster.local:8080' },
    { name: 'rollouts-demo-canary', upstream: 'http://rollouts-demo-canary.default.svc.cluster.local:8080' },
  ]);
});

t.test('Argo analysis: a template with arguments is reported; a simple Prometheus template is carried over', async (t) => {
  const [guestbook] = translateManifests(fixture('argo-analysis.yaml'), DEFAULT_KUBERNETES).results;
  t.match(guestbook!.findings, [{ code: 'not_mapped', field: 'spec.strategy.canary.analysis.args' }]);
  t.notOk((guestbook!.services[0]!.rollout as Record<string, unknown>).analysis, 'no half-read analysis');

  const simple: Manifest[] = [
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name: 'shop', namespace: 'web' },
      spec: {
        strategy: {
          canary: {
            canaryService: 'shop-canary',
            stableService: 'shop-stable',
            steps: [{ setWeight: 10 }, { pause: { duration: '1m' } }, { analysis: { templates: [{ templateName: 'errors' }] } }, { setWeight: 50 }, { pause: { duration: 30 } }, { experiment: {} }],
          },
        },
      },
    },
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AnalysisTemplate',
      metadata: { name: 'errors', namespace: 'web' },
      spec: { metrics: [{ name: 'error-ratio', interval: '30s', failureLimit: 2, successCondition: 'result[0] <= 0.01', provider: { prometheus: { address: 'http://prom:9090', query: 'sum(rate(veer_requests_total{code=~"5.."}[1m]))' } } }] },
    },
  ];
  const [shop] = translateManifests(simple, DEFAULT_KUBERNETES).results;
  t.match(shop!.findings, [{ code: 'not_mapped', field: 'spec.strategy.canary.steps[5]', reason: /experiment/ }]);
  t.same(shop!.services[0]!.rollout, {
    canary: 'shop-canary',
    steps: [{ weight: 10, pause: '1m', analysis: { metrics: [{ name: 'error-ratio', query: 'sum(rate(veer_requests_total{code=~"5.."}[1m]))', max: 0.01 }] } }, { weight: 50, pause: '30s' }, { weight: 100 }],
    analysis: { prometheus: { address: 'http://prom:9090' }, interval: '30s', failureLimit: 2 },
  });
  t.equal(checkService(shop!.services[0]!, nothingTaken()), null, 'a valid veer service');
});

t.test("Flagger's podinfo Canary: steps of stepWeight to maxWeight, threshold, builtin metrics, webhooks", async (t) => {
  const [r] = translateManifests(fixture('flagger-podinfo.yaml'), DEFAULT_KUBERNETES).results;
  const service = r!.services[0]!;
  t.equal(service.name, 'test.podinfo');
  t.equal(checkService(service, nothingTaken()), null, 'a valid veer service');
  const rollout = service.rollout as { canary: string; steps: { weight: number; pause?: string }[]; analysis: unknown; hooks: unknown };
  t.equal(rollout.canary, 'podinfo-canary');
  t.same(rollout.steps.map((s) => s.weight), [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 100]);
  t.equal(rollout.steps[0]!.pause, '10s');
  t.same(rollout.analysis, { interval: '10s', failureLimit: 10, maxErrorRate: 0.01 });
  t.same(rollout.hooks, [
    { type: 'pre-rollout', url: 'http://flagger-loadtester.test/', timeout: '30s' },
    { type: 'rollout', url: 'http://flagger-loadtester.test/', timeout: '5s' },
  ]);
  t.same(
    r!.findings.map((f) => f.field),
    ['spec.analysis.metrics[0].interval', 'spec.analysis.webhooks[0].metadata', 'spec.analysis.webhooks[1].metadata'],
  );
});

t.test('Flagger: stepWeights, request-duration, unsupported webhook types and metrics are reported', async (t) => {
  const canary: Manifest = {
    apiVersion: 'flagger.app/v1beta1',
    kind: 'Canary',
    metadata: { name: 'api', namespace: 'prod' },
    spec: {
      targetRef: { name: 'api' },
      service: { port: 8080 },
      analysis: {
        interval: '1m',
        threshold: 3,
        stepWeights: [1, 10, 50],
        metrics: [{ name: 'request-duration', thresholdRange: { max: 300 } }, { name: 'conversion', templateRef: { name: 'conv' } }],
        webhooks: [{ name: 'gate', type: 'confirm-rollout', url: 'http://gate/' }, { name: 'approve', type: 'confirm-promotion', url: 'http://gate/approve' }],
      },
    },
  };
  const [r] = translateManifests([canary], DEFAULT_KUBERNETES).results;
  const rollout = r!.services[0]!.rollout as { steps: { weight: number }[]; analysis: unknown; hooks: unknown };
  t.same(rollout.steps.map((s) => s.weight), [1, 10, 50, 100]);
  t.same(rollout.analysis, { interval: '1m', failureLimit: 3, maxP99Ms: 300 });
  t.same(rollout.hooks, [{ type: 'confirm-promotion', url: 'http://gate/approve' }]);
  t.same(r!.findings.map((f) => f.field), ['spec.analysis.metrics[1]', 'spec.analysis.webhooks[0].type']);
});

t.test('bad Rollouts and Canaries: clear errors, nothing produced', async (t) => {
  const cases: [Manifest, RegExp][] = [
    [{ apiVersion: 'argoproj.io/v1', kind: 'Rollout', metadata: { name: 'a' }, spec: { strategy: { canary: { steps: [] } } } }, /apiVersion: "argoproj.io\/v1" is not supported/],
    [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'a' }, spec: {} }, /spec\.strategy\.canary: is required/],
    [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'a' }, spec: { strategy: { canary: { steps: [{ setWeight: 'ten' }] } } } }, /setWeight: "ten" is not a percentage/],
    [{ apiVersion: 'flagger.app/v1beta1', kind: 'Canary', metadata: { name: 'c' }, spec: { targetRef: { name: 'c' }, analysis: { stepWeight: 5 } } }, /spec\.service\.port: is required/],
    [{ apiVersion: 'flagger.app/v1beta1', kind: 'Canary', metadata: { name: 'c' }, spec: { targetRef: { name: 'c' }, service: { port: 80 }, analysis: { stepWeight: 'x' } } }, /stepWeight: "x" is not a percentage/],
    [{ apiVersion: 'flagger.app/v1beta1', kind: 'Canary', metadata: { name: 'c' }, spec: { targetRef: { name: 'c' }, service: { port: 80 }, analysis: { interval: 'soon', stepWeight: 5 } } }, /interval: "soon" is not a duration/],
  ];
  for (const [manifest, reason] of cases) {
    const [r] = translateManifests([manifest], DEFAULT_KUBERNETES).results;
    const text = r!.findings.map((f) => `${f.field}: ${f.reason} [${f.code}]`).join('\n');
    t.match(text, reason);
    t.match(text, /invalid_manifest/);
    if (r!.findings.every((f) => f.code === 'invalid_manifest')) t.same(r!.services, [], `nothing from ${String(manifest.kind)} with ${reason}`);
  }
});
