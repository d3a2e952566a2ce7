// Weight checks and the arithmetic rollouts and shifts use.

import t from 'tap';
import { VeerError } from '../../src/errors.ts';
import { CommandQueue, checkWeights, splitAround, toPercents } from '../../src/state/index.ts';
import { compileTable } from '../../src/table/index.ts';
import { parseConfigText } from '../../src/config/index.ts';

const loaded = parseConfigText(`services:
  - name: shop
    versions:
      - { name: v1, upstream: http://127.0.0.1:1 }
      - { name: v2, upstream: http://127.0.0.1:2 }
      - { name: v3, upstream: http://127.0.0.1:3 }
`);
if (!loaded.ok) throw new Error('fixture');
const compiled = compileTable(loaded.config);
if (!compiled.ok) throw new Error('fixture');
const shop = compiled.table.servicesByName.get('shop')!;

t.test('checkWeights fills omitted versions with 0 and refuses bad maps with a code', async (t) => {
  t.same(checkWeights(shop, { v2: 5 }), { v1: 0, v2: 5, v3: 0 });
  const refused: [Record<string, unknown>, string][] = [
    [{ v9: 1 }, 'unknown_version'],
    [{}, 'invalid_weights'],
    [{ v1: -1 }, 'invalid_weights'],
    [{ v1: 0, v2: 0 }, 'invalid_weights'],
    [{ v1: '5' }, 'invalid_weights'],
    [{ v1: Number.POSITIVE_INFINITY }, 'invalid_weights'],
    [{ v1: Number.NaN }, 'invalid_weights'],
    [{ v1: 1e10 }, 'invalid_weights'],
  ];
  for (const [weights, code] of refused) {
    t.throws(() => checkWeights(shop, weights), { code }, JSON.stringify(weights));
    try {
      checkWeights(shop, weights);
    } catch (err) {
      t.type(err, VeerError);
    }
  }
});

t.test('splitAround gives the target its share and the rest in proportion, summing to 100', async (t) => {
  t.same(splitAround(['v1', 'v2'], 'v2', 25, { v1: 90 }), { v1: 75, v2: 25 });
  t.same(splitAround(['v1', 'v2', 'v3'], 'v3', 40, { v1: 1, v2: 1 }), { v1: 30, v2: 30, v3: 40 });
  t.same(splitAround(['v1', 'v2', 'v3'], 'v3', 0, { v1: 1, v2: 2 }), { v1: 33.33, v2: 66.67, v3: 0 });
  t.same(splitAround(['v1', 'v2'], 'v1', 10, { v2: 0 }), { v1: 10, v2: 90 }, 'all others at 0: the first takes the rest');
  for (const p of [0, 1, 33.333, 50, 99.99, 100]) {
    const w = splitAround(['a', 'b', 'c'], 'b', p, { a: 1, c: 2 });
    t.equal(Math.round((w.a! + w.b! + w.c!) * 100) / 100, 100, `sum is 100 at ${p}`);
  }
  t.same(toPercents({ a: 1, b: 3 }), { a: 25, b: 75 });
});

t.test('CommandQueue runs one task at a time in order, past failures', async (t) => {
  const queue = new CommandQueue();
  const order: number[] = [];
  let running = 0;
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      queue.run(async () => {
        running++;
        t.equal(running, 1, 'never two at once');
        await new Promise((r) => setTimeout(r, i % 3));
        order.push(i);
        running--;
        if (i % 5 === 0) throw new Error(`task ${i}`);
        return i;
      }),
    ),
  );
  t.same(order, Array.from({ length: 20 }, (_, i) => i));
  t.equal(results.filter((r) => r.status === 'rejected').length, 4);
  t.equal(queue.pending, 0);
});
