// `npm run build` (also run by `npm ci`): compiles src/ to dist/ with tsc,
// writes the config validator as code beside it (src/config/validator.ts says
// why) and copies the dashboard's static files (plain ES modules and CSS).
// bin/veer.js, `npm start` and the container image run dist/; the tests run
// the sources.

import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PREBUILT_VALIDATOR_FILE, prebuiltValidatorSource } from '../src/config/validator.ts';

const root = join(import.meta.dirname, '..');
// --out DIR builds elsewhere (the build's own test); the default is dist/.
const { values: flags } = parseArgs({ options: { out: { type: 'string' } } });
const dist = flags.out === undefined ? join(root, 'dist') : resolve(flags.out);
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

// A clean build: a module deleted from src/ must not live on in dist/.
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], { stdio: 'inherit' });
writeFileSync(join(dist, 'src', 'config', PREBUILT_VALIDATOR_FILE), prebuiltValidatorSource());
// The dashboard's page and modules are served as they are, beside the compiled dashboard.js.
cpSync(join(root, 'src', 'admin', 'dashboard'), join(dist, 'src', 'admin', 'dashboard'), { recursive: true });
