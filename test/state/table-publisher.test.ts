// The TablePublisher, on its own: one reference swapped per publish, a
// preview that publishes nothing, a weight change that recompiles one
// service and shares the rest, and a preview made stale by a reload.

import t from 'tap';
import type { Config } from '../../src/config/index.ts';
import { TablePublisher, type TableChange } from '../../src/state/index.ts';
import type { CompileResult, RouteTable } from '../../src/table/index.ts';
import { loadYaml } from '../helpers/tables.ts';

const SHOP = `  - name: shop
    match: { hosts: [shop.example], pathPrefix: / }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
    split:
      weights: { v1: 90, v2: 10 }
`;
const BLOG = `  - name: blog
    match: { hosts: [blog.example] }
    versions:
      - { name: a, upstream: "http://127.0.0.1:3003" }
      - { name: b, upstream: "http://127.0.0.1:3004" }
    split:
      weights: { a: 50, b: 50 }
`;
const API = `  - name: api
    match: { pathPrefix: /api }
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3005" }
      - { name: v2, upstream: "http://127.0.0.1:3006" }
      - { name: v3, upstream: "http://127.0.0.1:3007" }
`;

/** A fresh config (new objects every call) of the given service blocks. */
const configOf = (...blocks: string[]): Config => loadYaml(`services:\n${blocks.join('')}`);

/** A publisher with `config` published, and every publish it makes from now on. */
function publisherWith(config: Config) {
  const routes = new TablePublisher();
  const first = routes.applyConfig(config);
  if (!first.ok) throw new Error('fixture does not compile');
  const seen: { table: RouteTable; change: TableChange }[] = [];
  routes.onPublish((table, change) => seen.push({ table, change }));
  return { routes, seen };
}

function tableOf(result: CompileResult): RouteTable {
  if (!result.ok) throw new Error(`did not compile: ${result.issues.map((i) => i.message).join('; ')}`);
  return result.table;
}

const weightsOf = (table: RouteTable, service: string) => table.servicesByName.get(service)?.split.weights;

t.test('before the first publish there is no table; each publish swaps the one reference and tells every listener once', async (t) => {
  const routes = new TablePublisher();
  t.equal(routes.ready, false);
  t.throws(() => routes.table, /no route table published yet/);
  t.same(routes.runtimeWeights, {});

  const seenA: { table: RouteTable; change: TableChange }[] = [];
  const seenB: RouteTable[] = [];
  routes.onPublish((table, change) => seenA.push({ table, change }));
  routes.onPublish((table) => seenB.push(table));

  const config = configOf(SHOP, BLOG);
  const first = tableOf(routes.applyConfig(config));
  t.equal(routes.ready, true);
  t.equal(routes.table, first, 'the published table is the compiled one');
  t.equal(first.config, config);
  t.ok(Object.isFrozen(first), 'the table is frozen');

  const second = tableOf(routes.publishWeights({ shop: { v1: 50, v2: 50 } }));
  t.equal(routes.table, second);
  t.not(second, first, 'a weight change is a new table, not an edit of the old one');
  t.same(weightsOf(first, 'shop'), { v1: 90, v2: 10 }, 'the old table still reads the old weights');
  t.same(weightsOf(second, 'shop'), { v1: 50, v2: 50 });

  const third = tableOf(routes.applyConfig(configOf(SHOP, BLOG)));
  t.equal(routes.table, third);

  t.equal(seenA.length, 3, 'one call per publish');
  t.same(
    seenA.map((s) => s.table),
    [first, second, third],
  );
  t.equal(seenA[0]!.table, first);
  t.equal(seenA[1]!.table, second);
  t.equal(seenA[2]!.table, third);
  t.same(seenA[0]!.change, { kind: 'config' });
  t.same(seenA[1]!.change, { kind: 'weights', changes: { shop: { v1: 50, v2: 50 } } });
  t.same(seenA[2]!.change, { kind: 'config' });
  t.equal(seenB.length, 3, 'every listener hears every publish');
  t.equal(seenB[1], second);
});

t.test('a config that does not compile publishes nothing and says why', async (t) => {
  const { routes, seen } = publisherWith(configOf(SHOP));
  const before = routes.table;
  const bad = loadYaml(`services:\n${SHOP}${SHOP}`);
  const result = routes.applyConfig(bad);
  t.equal(result.ok, false);
  if (!result.ok) t.ok(result.issues.some((i) => i.code === 'duplicate_service'), 'the issue has its code');
  t.equal(routes.table, before, 'the running table stays');
  t.equal(seen.length, 0, 'no listener heard anything');
});

t.test('generations go up by one per publish, config or weights', async (t) => {
  const { routes } = publisherWith(configOf(SHOP, BLOG));
  const generations = [routes.table.generation];
  t.equal(generations[0], 1, 'the first table is generation 1');
  tableOf(routes.publishWeights({ shop: { v1: 1, v2: 1 } }));
  generations.push(routes.table.generation);
  tableOf(routes.applyConfig(configOf(SHOP, BLOG)));
  generations.push(routes.table.generation);
  const preview = tableOf(routes.preview({ blog: { a: 1, b: 0 } }));
  t.equal(routes.table.generation, 3, 'a preview takes no generation');
  tableOf(routes.publish(preview, { blog: { a: 1, b: 0 } }));
  generations.push(routes.table.generation);
  tableOf(routes.publishWeights({ blog: null }));
  generations.push(routes.table.generation);
  t.same(generations, [1, 2, 3, 4, 5]);
});

t.test('preview compiles the change and publishes nothing; publish then swaps in that very table', async (t) => {
  const { routes, seen } = publisherWith(configOf(SHOP, BLOG));
  const before = routes.table;
  const changes = { shop: { v1: 0, v2: 100 } };

  const preview = tableOf(routes.preview(changes));
  t.equal(routes.table, before, 'the published table is unchanged');
  t.equal(seen.length, 0, 'no listener heard a preview');
  t.same(routes.runtimeWeights, {}, 'the published runtime weights are unchanged');
  t.same(weightsOf(before, 'shop'), { v1: 90, v2: 10 });
  t.same(weightsOf(preview, 'shop'), { v1: 0, v2: 100 }, 'the preview carries the change');
  t.equal(preview.generation, before.generation + 1);

  const published = routes.publish(preview, changes);
  t.equal(tableOf(published), preview, 'nothing happened in between: the preview is published as is (same object)');
  t.equal(routes.table, preview);
  t.equal(seen.length, 1);
  t.equal(seen[0]!.table, preview);
  t.same(seen[0]!.change, { kind: 'weights', changes });
  t.same(routes.runtimeWeights, { shop: { v1: 0, v2: 100 } });
});

t.test('a reload between preview and publish: publish compiles the change onto the new config', async (t) => {
  const { routes, seen } = publisherWith(configOf(SHOP, BLOG));
  const changes = { shop: { v1: 25, v2: 75 } };
  const preview = tableOf(routes.preview(changes));

  // The reload changes blog's config weights and adds a service.
  const reloaded = configOf(SHOP, BLOG.replace('{ a: 50, b: 50 }', '{ a: 10, b: 90 }'), API);
  const afterReload = tableOf(routes.applyConfig(reloaded));

  const published = tableOf(routes.publish(preview, changes));
  t.not(published, preview, 'the stale preview is not published');
  t.equal(routes.table, published);
  t.equal(published.config, reloaded, 'the result carries the new config');
  t.equal(published.generation, afterReload.generation + 1, 'and the next generation');
  t.same(weightsOf(published, 'shop'), { v1: 25, v2: 75 }, 'and the weights of the change');
  t.equal(published.servicesByName.get('shop')!.split.source, 'runtime');
  t.same(weightsOf(published, 'blog'), { a: 10, b: 90 }, "the new config's weights for the other services");
  t.ok(published.servicesByName.has('api'), 'and the service the reload added');
  t.same(routes.runtimeWeights, { shop: { v1: 25, v2: 75 } });
  t.same(
    seen.map((s) => s.change.kind),
    ['config', 'weights'],
  );
});

t.test('a weight publish between preview and publish: the stale preview does not undo it', async (t) => {
  const { routes } = publisherWith(configOf(SHOP, BLOG));
  const shopChange = { shop: { v1: 0, v2: 100 } };
  const stale = tableOf(routes.preview(shopChange));
  tableOf(routes.publishWeights({ blog: { a: 0, b: 100 } }));
  const published = tableOf(routes.publish(stale, shopChange));
  t.not(published, stale, 'same config, but a table was published since: compiled again');
  t.same(weightsOf(published, 'shop'), { v1: 0, v2: 100 });
  t.same(weightsOf(published, 'blog'), { a: 0, b: 100 }, 'the change published in between is kept');
  t.same(routes.runtimeWeights, { shop: { v1: 0, v2: 100 }, blog: { a: 0, b: 100 } });
});

t.test('a weight change recompiles its service only: every other compiled service and the host index are shared', async (t) => {
  const { routes } = publisherWith(configOf(SHOP, BLOG, API));
  const before = routes.table;
  const after = tableOf(routes.publishWeights({ blog: { a: 1, b: 3 } }));

  t.equal(after.hosts, before.hosts, 'the host index is the same object');
  t.equal(after.config, before.config, 'the config is the same object');
  t.equal(after.services.length, before.services.length);
  for (const name of ['shop', 'api']) {
    t.equal(after.servicesByName.get(name), before.servicesByName.get(name), `${name} is the same compiled object`);
  }
  const blogBefore = before.servicesByName.get('blog')!;
  const blogAfter = after.servicesByName.get('blog')!;
  t.not(blogAfter, blogBefore, 'blog is compiled again');
  t.equal(blogAfter.index, blogBefore.index, 'at the same place');
  t.equal(after.services[after.hosts.byName.get('blog')!], blogAfter, 'the shared index finds the new blog');
  t.same(blogAfter.split.weights, { a: 1, b: 3 });
  t.same([...blogAfter.split.percents], [25, 75]);
  t.ok(Object.isFrozen(after.services), 'the services array is frozen');
  t.ok(Object.isFrozen(after.runtimeWeights), 'the runtime weights are frozen');

  // Dropping the runtime weights goes back to the config's, still sharing the rest.
  const reset = tableOf(routes.publishWeights({ blog: null }));
  t.same(weightsOf(reset, 'blog'), { a: 50, b: 50 });
  t.equal(reset.servicesByName.get('blog')!.split.source, 'config');
  t.equal(reset.hosts, before.hosts);
  t.equal(reset.servicesByName.get('shop'), before.servicesByName.get('shop'));
  t.same(reset.runtimeWeights, {});
});

t.test('weights that do not fit a service never take effect; the published table stays until a publish', async (t) => {
  const { routes, seen } = publisherWith(configOf(SHOP, BLOG));
  const before = routes.table;

  // A version the service does not have: the table layer ignores the weights with a warning (the command
  // pipeline refuses them before this, see runtime-state.test.ts); a preview of them publishes nothing.
  const preview = routes.preview({ shop: { v9: 100 } });
  t.equal(preview.ok, true, 'ignored, not an error: stored weights that no longer fit must not stop a start');
  if (preview.ok) {
    t.same(
      preview.warnings.map((w) => w.code),
      ['runtime_weights_ignored'],
    );
    t.match(preview.warnings[0]!.message, /unknown versions: v9/);
    t.same(weightsOf(preview.table, 'shop'), { v1: 90, v2: 10 }, "the config's weights apply");
    t.equal(preview.table.servicesByName.get('shop')!.split.source, 'config');
  }
  t.equal(routes.table, before, 'nothing was published');
  t.equal(seen.length, 0);

  for (const bad of [{ v1: -1, v2: 5 }, { v1: 0, v2: 0 }, { v1: Number.NaN, v2: 1 }]) {
    const result = routes.preview({ shop: bad });
    t.ok(result.ok && result.warnings.some((w) => w.code === 'runtime_weights_ignored'), `${JSON.stringify(bad)} is ignored with a warning`);
    if (result.ok) t.same(weightsOf(result.table, 'shop'), { v1: 90, v2: 10 });
  }
  t.equal(routes.table, before);
});

t.test('runtime weights for a service the config lacks are kept, and apply when a reload brings it back', async (t) => {
  const { routes, seen } = publisherWith(configOf(SHOP, BLOG));
  const before = routes.table;

  const kept = tableOf(routes.publishWeights({ api: { v1: 0, v2: 0, v3: 100 } }));
  t.same(kept.runtimeWeights, { api: { v1: 0, v2: 0, v3: 100 } }, 'the weights are kept');
  t.notOk(kept.servicesByName.has('api'), 'no service was made up for them');
  t.equal(kept.hosts, before.hosts);
  for (const name of ['shop', 'blog']) t.equal(kept.servicesByName.get(name), before.servicesByName.get(name), `${name} is shared`);
  t.same(seen.at(-1)!.change, { kind: 'weights', changes: { api: { v1: 0, v2: 0, v3: 100 } } });

  // A reload without api keeps them too.
  tableOf(routes.applyConfig(configOf(SHOP)));
  t.same(routes.runtimeWeights, { api: { v1: 0, v2: 0, v3: 100 } });

  // The reload that brings api back compiles it with them.
  const back = tableOf(routes.applyConfig(configOf(SHOP, API)));
  const api = back.servicesByName.get('api')!;
  t.same(api.split.weights, { v1: 0, v2: 0, v3: 100 });
  t.equal(api.split.source, 'runtime');
  t.same([...api.split.percents], [0, 0, 100]);
  t.same(back.runtimeWeights, { api: { v1: 0, v2: 0, v3: 100 } });
});

t.test('a reload keeps the runtime weights of every service and applies them to the new config', async (t) => {
  const { routes } = publisherWith(configOf(SHOP, BLOG));
  tableOf(routes.publishWeights({ shop: { v1: 10, v2: 90 } }));
  const reloaded = tableOf(routes.applyConfig(configOf(SHOP.replace('{ v1: 90, v2: 10 }', '{ v1: 100, v2: 0 }'), BLOG)));
  t.same(weightsOf(reloaded, 'shop'), { v1: 10, v2: 90 }, 'runtime weights win over the new config weights');
  t.same(weightsOf(reloaded, 'blog'), { a: 50, b: 50 });

  // A reload that drops the version the runtime weights name: they are ignored, with a warning, and kept.
  const dropped = routes.applyConfig(configOf(SHOP.replace('      - { name: v2, upstream: "http://127.0.0.1:3002" }\n', '').replace('{ v1: 90, v2: 10 }', '{ v1: 100 }'), BLOG));
  t.equal(dropped.ok, true);
  if (dropped.ok) {
    t.same(
      dropped.warnings.map((w) => w.code),
      ['runtime_weights_ignored'],
    );
    t.same(weightsOf(dropped.table, 'shop'), { v1: 100 });
  }
  t.same(routes.runtimeWeights, { shop: { v1: 10, v2: 90 } });
});

t.test('a reload that fails between preview and publish changes nothing: the preview is still published as is', async (t) => {
  const { routes } = publisherWith(configOf(SHOP, BLOG));
  const changes = { blog: { a: 0, b: 1 } };
  const preview = tableOf(routes.preview(changes));
  t.equal(routes.applyConfig(loadYaml(`services:\n${BLOG}${BLOG}`)).ok, false);
  t.equal(tableOf(routes.publish(preview, changes)), preview);
});

t.test('a reload that keeps a service config object keeps its compiled service, runtime weights and all', async (t) => {
  const config = configOf(SHOP, BLOG);
  const { routes } = publisherWith(config);
  const weighed = tableOf(routes.publishWeights({ shop: { v1: 3, v2: 1 } }));
  const same = tableOf(routes.applyConfig({ ...config }));
  t.equal(same.servicesByName.get('shop'), weighed.servicesByName.get('shop'), 'shop (with runtime weights) is reused');
  t.equal(same.servicesByName.get('blog'), weighed.servicesByName.get('blog'), 'blog is reused');
  t.equal(same.hosts, weighed.hosts, 'the same services in the same places keep the host index');
  t.same(weightsOf(same, 'shop'), { v1: 3, v2: 1 });

  const changed = tableOf(routes.applyConfig({ ...config, services: [config.services[0]!, configOf(BLOG).services[0]!] }));
  t.equal(changed.servicesByName.get('shop'), weighed.servicesByName.get('shop'), 'the unchanged service is reused');
  t.not(changed.servicesByName.get('blog'), weighed.servicesByName.get('blog'), 'a new config object is compiled again');
});
