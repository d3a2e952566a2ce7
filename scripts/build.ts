// `npm run build` (also run by `npm ci`): bundles src/ into dist/ with
// esbuild, writes the config validator as code beside it (src/config/validator.ts
// says why) and copies the dashboard's static files (plain ES modules and CSS).
// bin/veer.js, `npm start` and the container image run dist/; the tests run
// the sources.
//
// Why a bundle and not one compiled file per module: a veer that loads ~900
// modules (its own 130 and its dependencies', typebox alone 250) spends most
// of its start resolving, reading and linking them, and keeps a module record
// for each. Bundled, one service is ready in 0.4 s instead of 0.65 s, and
// idle at 80 MB instead of 93 (bench/scale.ts).
//
// dist/ is flat: the entries (cli.js, main-worker.js, read-worker.js,
// config.js) and their shared chunks sit side by side, so a path that a
// module computes from its own import.meta.url (the worker entries, the
// prebuilt validator, the dashboard folder) names the same file from any
// chunk, and the same one as in src/ relative to its source.

import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { PREBUILT_VALIDATOR_FILE, prebuiltValidatorSource } from '../src/config/validator.ts';

const root = join(import.meta.dirname, '..');
// --out DIR builds elsewhere (the build's own test); the default is dist/.
const { values: flags } = parseArgs({ options: { out: { type: 'string' } } });
const dist = flags.out === undefined ? join(root, 'dist') : resolve(flags.out);

/** The bundle's entry points: the CLI, the data-plane worker, the config-reading thread, and the config module the build test compares with the sources. */
const ENTRIES = {
  cli: 'src/cli/index.ts',
  'main-worker': 'src/main-worker.ts',
  'read-worker': 'src/config/read-worker.ts',
  config: 'src/config/index.ts',
};

/**
 * Left to node_modules at run time:
 * - undici: the forwarder requires its Pool, Dispatcher and errors by file (forwarder/undici-core.ts),
 *   and every other user must get those same classes, not a bundled copy;
 * - etcd3 (its gRPC client reads .proto files beside it), pino (its transports start workers by path),
 *   and the packages veer itself loads by name only when needed (ajv, yaml, pino-pretty, uplot).
 */
const EXTERNAL = ['undici', 'etcd3', 'pino', 'pino-pretty', 'ajv', 'ajv/*', 'yaml', 'uplot'];

// A clean build: a module deleted from src/ must not live on in dist/.
rmSync(dist, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ENTRIES,
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.19',
  chunkNames: '[name]-[hash]',
  external: EXTERNAL,
  // The bundled CommonJS dependencies require Node's own modules; an ES module has no `require`.
  banner: { js: "import { createRequire as veerCreateRequire } from 'node:module';\nconst require = veerCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync(join(dist, PREBUILT_VALIDATOR_FILE), prebuiltValidatorSource());
// The dashboard's page and modules are served as they are (admin/dashboard.ts reads the folder beside it).
cpSync(join(root, 'src', 'admin', 'dashboard'), join(dist, 'dashboard'), { recursive: true });
