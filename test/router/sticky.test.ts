// The key property of sticky splitting: ramping a canary only ever moves
// users onto it, by the expected share, the same way in every process.

import t from 'tap';
import { routeRequest, type RandomSource } from '../../src/router/index.ts';
import type { RouteTable } from '../../src/table/index.ts';
import { compileOrThrow, loadYaml, request, splitYaml, tableFromYaml } from '../helpers/tables.ts';

const USERS = Array.from({ length: 20_000 }, (_, i) => `user-${i}-${(i * 2654435761) % 1000003}`);
const NO_RANDOM: RandomSource = () => {
  throw new Error('a sticky request must not draw');
};

/** The version of every user, by the sticky header. */
function assign(table: RouteTable): string[] {
  return USERS.map((u) => routeRequest(table, request('/', { 'x-user-id': u }), NO_RANDOM)!.name);
}

const share = (versions: readonly string[], name: string) => (versions.filter((v) => v === name).length / versions.length) * 100;

const STICKY = 'sticky: { header: x-user-id }';

t.test('raising the canary step by step only moves users onto it, by the expected share', async (t) => {
  const config = loadYaml(splitYaml({ stable: 100, canary: 0 }, STICKY));
  let previous = assign(compileOrThrow(config));
  t.equal(share(previous, 'canary'), 0);
  let previousWeight = 0;
  for (const weight of [1, 5, 10, 25, 50, 100]) {
    // As the admin API and rollouts do it: runtime weights over the same config.
    const current = assign(compileOrThrow(config, { runtimeWeights: { svc: { stable: 100 - weight, canary: weight } } }));
    let left = 0;
    let moved = 0;
    for (let i = 0; i < USERS.length; i++) {
      if (previous[i] === 'canary' && current[i] !== 'canary') left++;
      if (previous[i] !== 'canary' && current[i] === 'canary') moved++;
    }
    t.equal(left, 0, `${previousWeight} -> ${weight}: nobody leaves the canary`);
    const movedShare = (moved / USERS.length) * 100;
    t.ok(Math.abs(movedShare - (weight - previousWeight)) < 1, `${previousWeight} -> ${weight}: ${movedShare.toFixed(2)}% moved (expected ${weight - previousWeight}%)`);
    t.ok(Math.abs(share(current, 'canary') - weight) < 1, `canary holds ${share(current, 'canary').toFixed(2)}% at weight ${weight}`);
    previous = current;
    previousWeight = weight;
  }
});

t.test('the same ramp through config weights (unnormalised) behaves the same', async (t) => {
  let previous: string[] | null = null;
  for (const canary of [0, 1, 3, 7, 20, 60, 200]) {
    const current = assign(tableFromYaml(splitYaml({ stable: 20, canary }, STICKY)));
    if (previous) t.equal(previous.filter((v, i) => v === 'canary' && current[i] !== 'canary').length, 0, `canary weight ${canary}`);
    t.ok(Math.abs(share(current, 'canary') - (canary / (20 + canary)) * 100) < 1);
    previous = current;
  }
});

t.test('a user gets the same version on every call and from another process', async (t) => {
  const yaml = splitYaml({ v1: 70, v2: 20, v3: 10 }, STICKY);
  const table = tableFromYaml(yaml);
  const first = assign(table);
  t.same(assign(table), first, 'every call');
  // Another process: its own parse and compile of the same file.
  t.same(assign(tableFromYaml(`# another replica\n${yaml}`)), first, 'a table compiled elsewhere from the same config');
  // Pinned: a change here would move these users (and most others) in every deployment.
  const versionOf = (u: string) => routeRequest(table, request('/', { 'x-user-id': u }), NO_RANDOM)!.name;
  t.same(['alice', 'bob', 'carol', 'dave'].map(versionOf), ['v3', 'v2', 'v2', 'v1']);
  t.ok(Math.abs(share(first, 'v1') - 70) < 1 && Math.abs(share(first, 'v2') - 20) < 1 && Math.abs(share(first, 'v3') - 10) < 1, 'shares follow the weights');
});

t.test('three versions: a canary taking weight from its neighbour never moves the third version\'s users', async (t) => {
  // Fractional weights on purpose: per-version rounding used to move the third edge by a bucket here.
  for (const [label, ramp] of [
    ['whole', [0, 5, 10, 25, 40, 60].map((c) => ({ stable: 60 - c, canary: c, other: 40 }))],
    ['fractional', [0, 0.05, 0.25, 0.5, 0.75, 1, 3, 6].map((c) => ({ stable: 6 - c, canary: c, other: 1 }))],
  ] as const) {
    const config = loadYaml(splitYaml(ramp[0]!, STICKY));
    let previous: string[] | null = null;
    for (const weights of ramp) {
      const current = assign(compileOrThrow(config, { runtimeWeights: { svc: weights } }));
      if (previous) {
        let otherMoved = 0;
        let leftCanary = 0;
        for (let i = 0; i < USERS.length; i++) {
          if ((previous[i] === 'other') !== (current[i] === 'other')) otherMoved++;
          if (previous[i] === 'canary' && current[i] !== 'canary') leftCanary++;
        }
        t.equal(otherMoved, 0, `${label} canary ${weights.canary}: nobody joins or leaves "other"`);
        t.equal(leftCanary, 0, `${label} canary ${weights.canary}: nobody leaves the canary`);
      }
      previous = current;
    }
  }
});

t.test('a new split.seed draws a new cohort', async (t) => {
  const base = assign(tableFromYaml(splitYaml({ v1: 50, v2: 50 }, STICKY)));
  const reseeded = assign(tableFromYaml(splitYaml({ v1: 50, v2: 50 }, `${STICKY}\n      seed: cohort-2`)));
  const changed = base.filter((v, i) => v !== reseeded[i]).length / USERS.length;
  // Independent cohorts at 50/50: half the users change version.
  t.ok(changed > 0.4 && changed < 0.6, `${(changed * 100).toFixed(1)}% changed version`);

  const canaryA = assign(tableFromYaml(splitYaml({ v1: 90, v2: 10 }, STICKY)));
  const canaryB = assign(tableFromYaml(splitYaml({ v1: 90, v2: 10 }, `${STICKY}\n      seed: cohort-2`)));
  const inA = canaryA.filter((v) => v === 'v2').length;
  const inBoth = canaryA.filter((v, i) => v === 'v2' && canaryB[i] === 'v2').length;
  t.ok(inBoth / inA < 0.2, `${((inBoth / inA) * 100).toFixed(1)}% of the first canary cohort is in the second (independent: 10%)`);

  const renamed = assign(tableFromYaml(splitYaml({ v1: 50, v2: 50 }, STICKY, 'other-service')));
  t.ok(base.filter((v, i) => v !== renamed[i]).length / USERS.length > 0.4, 'the default seed is the service name');
});

t.test('cookie and query sticky keys', async (t) => {
  const byCookie = tableFromYaml(splitYaml({ v1: 50, v2: 50 }, 'sticky: { cookie: uid }'));
  const byQuery = tableFromYaml(splitYaml({ v1: 50, v2: 50 }, 'sticky: { query: uid }'));
  const byHeader = tableFromYaml(splitYaml({ v1: 50, v2: 50 }, STICKY));
  let agree = 0;
  for (const u of USERS.slice(0, 2000)) {
    const h = routeRequest(byHeader, request('/', { 'x-user-id': u }), NO_RANDOM)!.name;
    const c = routeRequest(byCookie, request('/', { cookie: `a=1; uid=${encodeURIComponent(u)}` }), NO_RANDOM)!.name;
    const q = routeRequest(byQuery, request(`/p?x=1&uid=${encodeURIComponent(u)}`), NO_RANDOM)!.name;
    if (h === c && c === q) agree++;
  }
  t.equal(agree, 2000, 'the key, not where it is read from, decides the bucket');
});
