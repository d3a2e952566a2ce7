// Version labels (commit, image...): from the config to the admin API,
// `veer status` and veer_version_info; bad labels are config errors.

import t from 'tap';
import { admin } from '../helpers/admin.ts';
import { runCli } from '../helpers/cli.ts';
import { runVeerIn, writeConfig } from '../helpers/veer.ts';
import { parsePromText, samplesOf } from './prom-text.ts';

const config = (labels: string) => `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: silent }
services:
  - name: frontend
    versions:
      - { name: v1, upstream: "http://127.0.0.1:1", labels: { commit: 1a2b3c4, image: "frontend:2.2.0" } }
      - { name: v2, upstream: "http://127.0.0.1:2", labels: ${labels} }
    split: { weights: { v1: 90, v2: 10 } }
  - name: plain
    match: { pathPrefix: /plain }
    versions: [{ name: v1, upstream: "http://127.0.0.1:3" }]
`;

t.test('labels reach the API, veer status and veer_version_info', async (t) => {
  const long = 'x'.repeat(200);
  const veer = await runVeerIn(t, config(`{ commit: 3f2a9c1, note: ${long} }`));
  const service = (await admin<{ versions: { name: string; labels: Record<string, string> }[] }>(veer.adminUrl, 'GET', '/api/v1/services/frontend')).body;
  t.same(
    service.versions.map((v) => [v.name, v.labels]),
    [
      ['v1', { commit: '1a2b3c4', image: 'frontend:2.2.0' }],
      ['v2', { commit: '3f2a9c1', note: long }],
    ],
  );
  const text = parsePromText(await (await fetch(`${veer.adminUrl}/metrics`)).text());
  const info = samplesOf(text, 'veer_version_info', {});
  t.equal(info.length, 2, 'one series per version with labels; none for the service without');
  t.match(samplesOf(text, 'veer_version_info', { service: 'frontend', version: 'v1' }), [{ labels: { label_commit: '1a2b3c4', label_image: 'frontend:2.2.0' }, value: 1 }]);
  t.equal(samplesOf(text, 'veer_version_info', { version: 'v2' })[0]!.labels.label_note!.length, 128, 'a long value is cut');

  const status = await runCli(['status', '--admin', veer.adminUrl]);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /VERSION\s*│\s*LABELS/);
  t.match(status.stdout, /commit=3f2a9c1/);
});

t.test('bad labels are config errors with their path', async (t) => {
  for (const [labels, why] of [
    ['{ "bad-name": x }', 'a name with a dash'],
    ['{ 1st: x }', 'a name starting with a digit'],
    [`{ ${Array.from({ length: 17 }, (_, i) => `l${i}: x`).join(', ')} }`, 'more than 16'],
    [`{ commit: ${'y'.repeat(300)} }`, 'a value over 256 characters'],
  ]) {
    const result = await runCli(['validate', '--config', writeConfig(config(labels!))]);
    t.not(result.code, 0, `refused: ${why}`);
    t.match(result.stdout + result.stderr, /services\[0\]\.versions\[1\]\.labels/, `${why}: the path is named`);
  }
});
