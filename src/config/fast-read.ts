// The quick first read of a config. The YAML library that reports every
// problem with its line and column builds a whole document model, which for
// 10 000 services takes seconds and hundreds of MB. A valid config needs none
// of that, so it is read first with js-yaml (YAML 1.2 core schema, as the
// full reader uses) straight into plain data. Anything unusual gives up and
// the full reader runs instead: a YAML error, anchors, aliases or tags, a
// `${VAR}` that cannot be filled, or anything the schema or the config rules
// refuse. The full reader then finds and places every problem, so a bad
// config reads exactly as before. Positions for problems found later
// (compile) are computed on demand, by the full reader, once.
//
//   text ──fast?──> js-yaml ──> ${VAR} ──> schema ──> rules ──> frozen Config   (valid: done)
//          │ no        └───────────┴──────────┴─────────┴──> null: the full reader runs

import jsyaml from 'js-yaml';

/**
 * Anchors (`&a`), aliases (`*a`), tags (`!t`), directives (`%YAML`) and
 * binary literals (`0b1`, a string to the full reader but a number to
 * js-yaml): left to the full reader, which bounds aliases and knows its tags.
 * A quoted `"*.example.com"` does not match.
 */
const NOT_FOR_FAST_READ = /(?:^|[\s[{,])[&*!]\S|^%|:\s*[-+]?0b[01]/m;

const ENV_REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;

/** Substitutes `${VAR}` in one scalar; null when a reference is malformed or names an unset variable without a default. */
export function substituteValue(value: string, env: NodeJS.ProcessEnv, problem?: (kind: 'env_syntax' | 'env_unset', name: string) => void): string | null {
  let failed = false;
  const out = value.replace(ENV_REFERENCE, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === '$$') return '$';
    if (name === undefined) {
      failed = true;
      problem?.('env_syntax', '');
      return whole;
    }
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (fallback !== undefined) return fallback;
    if (set === '') return '';
    failed = true;
    problem?.('env_unset', name);
    return whole;
  });
  return failed ? null : out;
}

/** True when a scalar is one whole `${...}` reference (its result may be coerced to the type the schema wants). */
export const isWholeReference = (value: string): boolean => /^\$\{[^}]*\}$/.test(value);

/** JSON pointer of a path, as the schema validator reports instance paths. */
export function toPointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/**
 * Reads `text` into plain data with `${VAR}` filled in, or null when the
 * full reader must run. `substituted` receives the pointer of every value
 * that was one whole reference.
 */
export function readFast(text: string, env: NodeJS.ProcessEnv, substituted: string[]): unknown {
  if (NOT_FOR_FAST_READ.test(text)) return null;
  let data: unknown;
  try {
    data = jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA });
  } catch {
    return null;
  }
  // An empty file reads as an empty mapping, as with the full reader.
  data ??= {};
  return substituteTree(data, env, [], substituted) ? data : null;
}

/** Fills `${VAR}` in every string value (never in keys) in place; false at the first that cannot be filled. */
function substituteTree(node: unknown, env: NodeJS.ProcessEnv, path: (string | number)[], substituted: string[]): boolean {
  if (node === null || typeof node !== 'object') return true;
  const holder = node as Record<string | number, unknown>;
  const keys: Iterable<string | number> = Array.isArray(node) ? node.keys() : Object.keys(node);
  for (const key of keys) {
    const value = holder[key];
    if (typeof value === 'string') {
      if (!value.includes('$')) continue;
      const filled = substituteValue(value, env);
      if (filled === null) return false;
      if (isWholeReference(value)) substituted.push(toPointer([...path, key]));
      holder[key] = filled;
    } else if (value !== null && typeof value === 'object' && !substituteTree(value, env, [...path, key], substituted)) return false;
  }
  return true;
}
