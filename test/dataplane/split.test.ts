// Weighted and sticky splitting measured over real requests through veer.

import { writeFileSync } from 'node:fs';
import t from 'tap';
import { Pool } from 'undici';
import { runLimited, type TestScope } from '../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstreams.ts';
import { runVeer, serviceConfig } from '../helpers/veer.ts';

/** An upstream that answers a tiny body; veer's x-veer-version says which version served. */
async function tinyUpstream(t: TestScope, name: string): Promise<TestUpstream> {
  let self: TestUpstream | null = null;
  const up = await startUpstream(name, (_req, res) => {
    // The helper keeps every request in `seen`; drop them so thousands of requests stay cheap.
    if (self !== null) self.seen.length = 0;
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
    res.end(name);
  });
  self = up;
  t.teardown(() => up.close());
  return up;
}

/** Sends `count` GETs over a keep-alive pool and counts the x-veer-version of each answer. */
async function countVersions(url: string, count: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<Map<string, number>> {
  const pool = new Pool(url, { connections: 20 });
  const seen = new Map<string, number>();
  try {
    await runLimited(count, 20, async (i) => {
      const res = await pool.request({ path: '/', method: 'GET', headers: headers(i) });
      const body = await res.body.text();
      const version = String(res.headers['x-veer-version']);
      if (res.statusCode !== 200 || body !== version) throw new Error(`unexpected answer ${res.statusCode} ${version} ${body}`);
      seen.set(version, (seen.get(version) ?? 0) + 1);
    });
  } finally {
    await pool.close();
  }
  return seen;
}

t.test('weighted split over 10 000 real requests follows the weights', async (t) => {
  const v1 = await tinyUpstream(t, 'v1');
  const v2 = await tinyUpstream(t, 'v2');
  const cases = [
    // ±1.5 pp at 10% over 10 000 draws is 5 standard deviations (sd 0.3 pp), and
    // ±2.5 pp at 50% (sd 0.5 pp) too: a false failure is one run in millions, while a
    // routing bias of a point or two still fails. (3.2 sd over 4000 draws did fail in CI.)
    { weights: { v1: 90, v2: 10 }, expected: 0.1, tolerance: 0.015 },
    { weights: { v1: 50, v2: 50 }, expected: 0.5, tolerance: 0.025 },
  ];
  for (const c of cases) {
    const veer = await runVeer(serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: c.weights }));
    const total = 10_000;
    const started = performance.now();
    const seen = await countVersions(veer.url, total);
    const ms = performance.now() - started;
    await veer.stop();
    t.equal((seen.get('v1') ?? 0) + (seen.get('v2') ?? 0), total, 'every request went to v1 or v2');
    const share = (seen.get('v2') ?? 0) / total;
    const error = share - c.expected;
    t.comment(
      `weights ${JSON.stringify(c.weights)}: v2 share ${(share * 100).toFixed(2)}% over ${total} requests ` +
        `(expected ${c.expected * 100}%, error ${(error * 100).toFixed(2)} pp) in ${ms.toFixed(0)} ms`,
    );
    t.ok(Math.abs(error) <= c.tolerance, `v2 share within ±${c.tolerance * 100} pp of ${c.expected * 100}% (got ${(share * 100).toFixed(2)}%)`);
  }
});

t.test('sticky header keeps each user on one version, and raising the canary only moves users onto it', async (t) => {
  const v1 = await tinyUpstream(t, 'v1');
  const v2 = await tinyUpstream(t, 'v2');
  const config = (canary: number) =>
    serviceConfig({ versions: { v1: v1.url, v2: v2.url }, weights: { v1: 100 - canary, v2: canary }, sticky: '{ header: x-user-id }' });
  const veer = await runVeer(config(10));
  t.teardown(() => veer.stop());

  const users = Array.from({ length: 300 }, (_, i) => `user-${i}-${(i * 2654435761) % 100000}`);
  const assign = async (): Promise<string[]> => {
    const rounds: string[][] = [];
    for (let round = 0; round < 3; round++) {
      const versions = new Array<string>(users.length);
      const seen = await countVersionsPerUser(veer.url, users);
      for (let i = 0; i < users.length; i++) versions[i] = seen[i]!;
      rounds.push(versions);
    }
    const unstable = users.filter((_, i) => rounds[0]![i] !== rounds[1]![i] || rounds[0]![i] !== rounds[2]![i]);
    t.same(unstable, [], 'each user got the same version on 3 repeated requests');
    return rounds[0]!;
  };

  const before = await assign();
  const onV2Before = before.filter((v) => v === 'v2').length;
  t.comment(`canary 10%: ${onV2Before} of ${users.length} users on v2`);
  t.ok(onV2Before > 10 && onV2Before < 60, `about 10% of users on v2 (${onV2Before}/300)`);

  writeFileSync(veer.configPath, config(30));
  t.equal(await veer.veer.reloader.reload('test'), 'success', 'the raised weight is applied');

  const after = await assign();
  const movedBack = users.filter((_, i) => before[i] === 'v2' && after[i] !== 'v2');
  const movedOn = users.filter((_, i) => before[i] === 'v1' && after[i] === 'v2');
  t.comment(`canary 10% -> 30%: ${movedOn.length} users moved v1 -> v2, ${movedBack.length} moved back`);
  t.same(movedBack, [], 'no user on v2 moved back to v1');
  t.ok(movedOn.length > 20, `some users moved v1 -> v2 (${movedOn.length})`);
  const onV2After = after.filter((v) => v === 'v2').length;
  t.ok(onV2After > 60 && onV2After < 120, `about 30% of users on v2 after the raise (${onV2After}/300)`);
});

/** One request per user (x-user-id), returning the version each got, in order. */
async function countVersionsPerUser(url: string, users: readonly string[]): Promise<string[]> {
  const pool = new Pool(url, { connections: 20 });
  const out = new Array<string>(users.length);
  try {
    await runLimited(users.length, 20, async (i) => {
      const res = await pool.request({ path: '/', method: 'GET', headers: { 'x-user-id': users[i]! } });
      await res.body.dump();
      out[i] = String(res.headers['x-veer-version']);
    });
  } finally {
    await pool.close();
  }
  return out;
}
