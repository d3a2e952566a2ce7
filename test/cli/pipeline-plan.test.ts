// Reading a pipeline plan: groups, defaults, ${VAR}, and every problem with
// its path and line:column.

import t from 'tap';
import { formatPlanIssue, parsePlanText, type PlanIssue } from '../../src/cli/pipeline-plan.ts';

const CONTRACT_PLAN = `service: shop
canary: v2
onAbort: rollback
stages:
  - { name: dev, admin: "http://veer-admin.dev:9901", token: "\${DEV_TOKEN}" }
  - { name: staging, admin: "http://veer-admin.staging:9901/", token: "\${STAGING_TOKEN}", soak: 10m }
  - parallel:
      - { name: prod-eu, admin: "https://veer-admin.eu:9901", token: "\${EU_TOKEN}" }
      - { name: prod-us, admin: "https://veer-admin.us:9901", token: "\${US_TOKEN:-us-default}" }
`;
const ENV = { DEV_TOKEN: 'd', STAGING_TOKEN: 's', EU_TOKEN: 'e' };

function issuesOf(text: string, env: NodeJS.ProcessEnv = ENV): PlanIssue[] {
  const result = parsePlanText(text, env);
  if (result.ok) throw new Error('expected problems');
  return [...result.issues];
}

t.test("the CONTRACT's plan reads as groups: two stages, then a parallel pair", async (t) => {
  const result = parsePlanText(CONTRACT_PLAN, ENV);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  const { plan } = result;
  t.equal(plan.service, 'shop');
  t.equal(plan.canary, 'v2');
  t.equal(plan.onAbort, 'rollback');
  t.same(
    plan.groups.map((g) => [g.parallel, g.stages.map((s) => [s.name, s.admin, s.token, s.soakMs, s.path])]),
    [
      [false, [['dev', 'http://veer-admin.dev:9901', 'd', 0, 'stages[0]']]],
      [false, [['staging', 'http://veer-admin.staging:9901', 's', 600_000, 'stages[1]']]],
      [
        true,
        [
          ['prod-eu', 'https://veer-admin.eu:9901', 'e', 0, 'stages[2].parallel[0]'],
          ['prod-us', 'https://veer-admin.us:9901', 'us-default', 0, 'stages[2].parallel[1]'],
        ],
      ],
    ],
  );
});

t.test('onAbort defaults to stop; the fingerprint ignores tokens and sees every other change', async (t) => {
  const a = parsePlanText('service: shop\ncanary: v2\nstages: [{ name: dev, admin: "http://a:1", token: "${T}" }]\n', { T: 'one' });
  const b = parsePlanText('service: shop\ncanary: v2\nstages: [{ name: dev, admin: "http://a:1", token: "${T}" }]\n', { T: 'two' });
  const c = parsePlanText('service: shop\ncanary: v3\nstages: [{ name: dev, admin: "http://a:1", token: "${T}" }]\n', { T: 'one' });
  if (!a.ok || !b.ok || !c.ok) throw new Error('expected valid plans');
  t.equal(a.plan.onAbort, 'stop');
  t.equal(a.plan.fingerprint, b.plan.fingerprint, 'a rotated token is the same plan');
  t.not(a.plan.fingerprint, c.plan.fingerprint, 'another canary is another plan');
});

t.test('each problem has its code, path and place', async (t) => {
  const issues = issuesOf(
    `service: shop
canary: v2
stages:
  - { name: dev, admin: "http://a:1", token: "\${MISSING}" }
  - { name: dev, admin: "veer-admin:9901", soak: "10 minutes" }
  - parallel:
      - { name: eu, admin: "http://user:pw@eu:1", region: eu }
      - { parallel: [{ name: x, admin: "http://x:1" }] }
  - parallel: []
  - "just a string"
`,
  );
  const lines = issues.map((i) => formatPlanIssue('PLAN.yaml', i));
  t.same(lines, [
    'PLAN.yaml:4:46 stages[0].token: refers to environment variable MISSING, which is not set [env_unset]',
    'PLAN.yaml:5:13 stages[1].name: "dev" is already the name of stages[0]; stage names must be unique [duplicate_stage]',
    'PLAN.yaml:5:25 stages[1].admin: "veer-admin:9901" is not an http:// or https:// URL such as http://veer-admin.dev:9901 (no query, no credentials: give the token in token:) [invalid_admin_url]',
    'PLAN.yaml:5:50 stages[1].soak: must be a duration such as 500ms, 30s, 1m or 1h (got "10 minutes") [schema]',
    'PLAN.yaml:7:28 stages[2].parallel[0].admin: "http://user:pw@eu:1" is not an http:// or https:// URL such as http://veer-admin.dev:9901 (no query, no credentials: give the token in token:) [invalid_admin_url]',
    'PLAN.yaml:7:59 stages[2].parallel[0].region: is not a key here (known: name, admin, token, soak) [unknown_key]',
    'PLAN.yaml:8:9 stages[2].parallel[1].name: is required [required]',
    'PLAN.yaml:8:9 stages[2].parallel[1].admin: is required [required]',
    'PLAN.yaml:8:21 stages[2].parallel[1].parallel: parallel groups do not nest: list the stages of a group one by one [schema]',
    'PLAN.yaml:9:15 stages[3].parallel: must list at least one stage [schema]',
    'PLAN.yaml:10:5 stages[4]: must be a stage such as { name: dev, admin: "http://veer-admin.dev:9901" }, or { parallel: [stages] } (got "just a string") [schema]',
  ]);
});

t.test('service and canary, or release', async (t) => {
  t.match(issuesOf('stages: [{ name: dev, admin: "http://a:1" }]\n'), [
    { code: 'required', path: 'service' },
    { code: 'required', path: 'canary' },
  ]);
  const release = parsePlanText('release: checkout-2.3\nstages: [{ name: dev, admin: "http://a:1" }]\n', ENV);
  t.match(release, { ok: true, plan: { service: 'release:checkout-2.3', canary: 'checkout-2.3' } }, 'a release plan needs no service or canary');
  t.match(issuesOf('release: checkout-2.3\ncanary: v2\nstages: [{ name: dev, admin: "http://a:1" }]\n'), [{ code: 'schema', path: 'canary' }]);
  t.match(issuesOf('service: shop\ncanary: v2\nstages: [{ name: dev, admin: "http://a:1" }]\nsteps: []\n'), [{ code: 'unknown_key', path: 'steps', message: /known: service, canary, release, onAbort, stages/ }]);
});

t.test('YAML that does not parse, and a plan that is not a mapping', async (t) => {
  t.match(issuesOf('service: [\n'), [{ code: 'yaml_syntax', path: '(document)', line: 2 }]);
  t.match(issuesOf('service: a\nservice: b\nstages: []\n'), [{ code: 'yaml_syntax', message: /unique/ }]);
  t.match(issuesOf('- a\n- b\n'), [{ code: 'schema', path: '(root)', message: /must be a mapping/ }]);
  t.match(issuesOf('service: shop\ncanary: v2\nstages: [{ name: dev, admin: "${A:x}" }]\n'), [{ code: 'env_syntax', path: 'stages[0].admin' }]);
});
