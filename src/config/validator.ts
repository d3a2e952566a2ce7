// The config schema's validator. Compiling the schema with Ajv is the largest
// single cost of starting veer (75 ms of 600), so `npm run build` writes the
// compiled validator as code (Ajv's standalone output) beside the compiled
// JavaScript, and a compiled veer loads it instead. The sources (and so the
// tests) always compile the schema they hold: a stale prebuilt validator can
// only exist inside a stale build, which bin/veer.js does not run.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvClass, Options, ValidateFunction } from 'ajv';
import type StandaloneCode from 'ajv/dist/standalone/index.js';
import { ConfigSchema } from './schema.ts';

/** The file the build writes next to this module's compiled form. */
export const PREBUILT_VALIDATOR_FILE = 'config-validator.cjs';

/** `verbose` keeps each error's parentSchema, whose descriptions become the messages. */
const OPTIONS: Options = { allErrors: true, useDefaults: true, strict: false, verbose: true };

let validator: ValidateFunction | undefined;

const requireHere = createRequire(import.meta.url);

/** Ajv itself, loaded only where a schema is compiled (the sources, the build): a compiled veer starts without it. */
function loadAjv(): typeof AjvClass {
  return (requireHere('ajv') as { Ajv: typeof AjvClass }).Ajv;
}

/** The validator: the prebuilt one when this is a build that has it, else compiled now, once. */
export function configValidator(): ValidateFunction {
  return (validator ??= loadPrebuilt() ?? new (loadAjv())(OPTIONS).compile(ConfigSchema));
}

function loadPrebuilt(): ValidateFunction | null {
  const file = new URL(PREBUILT_VALIDATOR_FILE, import.meta.url);
  if (!existsSync(file)) return null;
  return requireHere(fileURLToPath(file)) as ValidateFunction;
}

/** The validator as a CommonJS module, for the build. */
export function prebuiltValidatorSource(): string {
  const standaloneCode = requireHere('ajv/dist/standalone') as typeof StandaloneCode.default;
  const ajv = new (loadAjv())({ ...OPTIONS, code: { source: true, esm: false } });
  return standaloneCode(ajv, ajv.compile(ConfigSchema));
}
