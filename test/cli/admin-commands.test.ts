// The admin-talking commands, run as the real `veer` binary against a real
// veer: status table, weights, explain, errors with the API's code.

import t from 'tap';
import { runCli } from '../helpers/cli.ts';
import { startUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';
import { countVersions } from '../helpers/admin.ts';
import { reportErrors, type CommandIO } from '../../src/cli/admin-io.ts';
import { runExplain } from '../../src/cli/admin-explain.ts';
import { runRolloutVerb } from '../../src/cli/admin-rollout.ts';
import { runStatus } from '../../src/cli/admin-status.ts';
import { runWeights } from '../../src/cli/admin-weights.ts';

const TOKEN = 'cli-test-token';

t.test('status, weights and explain from the CLI', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const yaml = serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 90, v2: 10 }, sticky: '{ header: x-user-id }', extra: '    routes:\n      - match: { header: { name: x-canary, value: always } }\n        to: v2\n' })
    .replace('admin:\n  listen: 127.0.0.1:0\n', `admin:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}\n`);
  const running = await runVeer(yaml);
  t.teardown(async () => {
    await running.stop();
    await v1.close();
    await v2.close();
  });
  const env = { VEER_ADMIN_URL: running.adminUrl, VEER_ADMIN_TOKEN: TOKEN };

  const status = await runCli(['status'], env);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout, /SERVICE.*VERSION.*WEIGHT.*SHARE.*STICKY.*ROLLOUT/);
  t.match(status.stdout, /svc\s+│ v1\s+│ 90\s+│ 90%\s+│ header:x-user-id/);
  t.match(status.stdout, /│ v2\s+│ 10\s+│ 10%/);

  const set = await runCli(['weights', 'svc', 'v1=0', 'v2=100'], env);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, 'svc: v1=0 (0%) v2=100 (100%)');
  t.same(await countVersions(running.url, 10), { v2: 10 }, 'the weights apply');

  const json = await runCli(['status', 'svc', '--json'], env);
  t.equal(json.code, 0);
  t.same(JSON.parse(json.stdout).weights, { v1: 0, v2: 100 });

  const rule = await runCli(['explain', 'svc', '-H', 'x-canary: always', '--path', '/cart'], env);
  t.equal(rule.code, 0, rule.stderr);
  t.match(rule.stdout, /svc -> v2 \(rule\)/);
  t.match(rule.stdout, /route rule 0 matched/);
  const sticky = await runCli(['explain', 'svc', '-H', 'X-User-Id: alice', '--cookie', 'a=b', '--query', 'q=1'], env);
  t.match(sticky.stdout, /svc -> v2 \(sticky\)/);
  t.match(sticky.stdout, /hashes to bucket \d+ of 10000/);

  const history = await runCli(['status', '--json', '--admin', running.adminUrl, '--token', TOKEN]);
  t.equal(history.code, 0, 'flags work as well as the environment');
});

t.test('CLI errors carry the API code and exit non-zero; nothing changes', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  const yaml = serviceConfig({ versions: { v1: v1.url, v2: v2.url } }).replace('admin:\n  listen: 127.0.0.1:0\n', `admin:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}\n`);
  const running = await runVeer(yaml);
  t.teardown(async () => {
    await running.stop();
    await v1.close();
    await v2.close();
  });
  // The binary itself: exit code and stderr.
  const denied = await runCli(['weights', 'svc', 'v1=0', 'v2=1'], { VEER_ADMIN_URL: running.adminUrl });
  t.equal(denied.code, 1, 'exit 1 without the token');
  t.match(denied.stderr, /^veer: missing admin token.*\[unauthorized\]$/m);
  const unreachable = await runCli(['status'], { VEER_ADMIN_URL: 'http://127.0.0.1:1' });
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /cannot reach the veer admin API at http:\/\/127\.0\.0\.1:1.*\[unreachable\]/);

  // The same commands in-process (a process start per case would be slow).
  const flags = { admin: running.adminUrl, token: TOKEN };
  const cases: [string, (io: CommandIO) => Promise<number>, RegExp][] = [
    ['wrong token', (io) => runStatus({ ...flags, token: 'wrong' }, undefined, io), /wrong admin token.*\[unauthorized\]/],
    ['unknown service', (io) => runStatus(flags, 'nope', io), /no service named "nope".*\[unknown_service\]/],
    ['unknown version', (io) => runWeights(flags, 'svc', ['v1=50', 'v3=50'], io), /"v3" is not a version.*\[unknown_version\]/],
    ['all zero', (io) => runWeights(flags, 'svc', ['v1=0', 'v2=0'], io), /all weights are 0.*\[invalid_weights\]/],
    ['negative', (io) => runWeights(flags, 'svc', ['v1=-1'], io), /must not be negative.*\[invalid_weights\]/],
    ['not a number', (io) => runWeights(flags, 'svc', ['v1=abc'], io), /must be a number \[usage\]/],
    ['no =', (io) => runWeights(flags, 'svc', ['v1'], io), /is not VERSION=WEIGHT \[usage\]/],
    ['twice', (io) => runWeights(flags, 'svc', ['v1=1', 'v1=2'], io), /v1 is given twice \[usage\]/],
    ['bad header', (io) => runExplain({ ...flags, header: ['no-colon'], cookie: [], query: [] }, 'svc', io), /expected 'name: value' \[usage\]/],
    ['bad path', (io) => runExplain({ ...flags, header: [], cookie: [], query: [], path: 'no-slash' }, 'svc', io), /\[invalid_body\]/],
    ['no rollout', (io) => runRolloutVerb(flags, 'pause', 'svc', io), /has no rollout \[no_rollout\]/],
  ];
  for (const [name, fn, message] of cases) {
    const lines: string[] = [];
    const io: CommandIO = { out: (l) => lines.push(l), err: (l) => lines.push(l) };
    t.equal(await reportErrors(io, () => fn(io)), 1, `${name}: exit 1`);
    t.match(lines.join('\n'), message, `${name}: ${lines.join(' ')}`);
  }
  t.same(running.veer.state.table.servicesByName.get('svc')!.split.weights, { v1: 100, v2: 0 }, 'nothing changed');
});
