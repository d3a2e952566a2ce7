// Reads the YAML config, substitutes ${VAR}, validates it against the schema
// and returns frozen plain data, or every error with its path and line:column.

import type { ConfigIssueCode } from '../errors.ts';
import { readFile } from 'node:fs/promises';
import type { ErrorObject } from 'ajv';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Document, Node } from 'yaml';
import { checkEtcdRules } from './etcd-rules.ts';
import { isWholeReference, readFast, substituteValue, toPointer } from './fast-read.ts';
import type { Config } from './schema.ts';
import { isLoopbackHost, parseListenAddress } from './units.ts';
import { configValidator } from './validator.ts';

/** A path into the config document: `['services', 0, 'split', 'weights']`. */
export type ConfigPath = readonly (string | number)[];

/** One problem found in a config file. */
export interface ConfigIssue {
  readonly code: ConfigIssueCode;
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** Maps a path in the document to where it is written (its key's position when `atKey`). */
export type Locate = (path: ConfigPath, atKey?: boolean) => { line: number; column: number } | undefined;

/** The outcome of reading a config: frozen data, or the issues that refused it. */
export type ConfigLoadResult =
  | { readonly ok: true; readonly config: Config; readonly text: string; readonly locate: Locate; readonly warnings?: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[]; readonly text: string };

/** `['services', 0, 'split']` -> `services[0].split`. */
export function formatConfigPath(path: ConfigPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(root)' : out;
}

/** A problem found after loading (by compile), with its path in the document. */
export interface PathIssue {
  readonly code: ConfigIssueCode;
  readonly path: ConfigPath;
  readonly message: string;
  /** Point at the key rather than its value (e.g. an unknown name used as a key). */
  readonly atKey?: boolean;
}

/** Gives problems found after loading their printable path and place in the file. */
export function locateIssues(issues: readonly PathIssue[], locate: Locate): ConfigIssue[] {
  return issues.map((i) => ({ code: i.code, path: formatConfigPath(i.path), message: i.message, ...locate(i.path, i.atKey === true) }));
}

/** Reads and validates the config file at `file`. Never throws for bad content. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigLoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = (code && UNREADABLE_REASONS[code]) ?? (err as Error).message;
    return {
      ok: false,
      text: '',
      issues: [{ code: 'config_unreadable', path: '(file)', message: `cannot read ${file}: ${reason}` }],
    };
  }
  return parseConfigText(text, env);
}

const UNREADABLE_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  ENOTDIR: 'a parent of it is not a directory',
};

/** The most alias uses a config may expand: a few are handy, thousands are an attack on memory. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses and validates config text. Pure apart from reading `env`. A valid
 * config is read by the fast reader (fast-read.ts); anything it does not
 * take, and every config with a problem, by the full one below, which places
 * each problem in the file. `fast: false` skips the fast reader.
 */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env, options: { fast?: boolean } = {}): ConfigLoadResult {
  if (options.fast !== false) {
    const quick = readQuickly(text, env);
    if (quick !== null) return quick;
  }
  const { doc, position, locate } = readFully(text);

  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e): ConfigIssue => ({
      code: 'yaml_syntax',
      path: '(document)',
      message: e.message.split('\n')[0]!,
      ...position(e.pos[0]),
    }));
    return { ok: false, issues, text };
  }

  const substituted: string[] = [];
  const envIssues = substituteEnv(doc, env, locate, substituted);
  if (envIssues.length > 0) return { ok: false, issues: envIssues, text };

  // An empty file reads as an empty mapping, so the answer is "services is required".
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    // Too many alias uses (a "billion laughs" block): refused like a syntax error, placed at the first alias.
    const alias = /(?:^|[\s[{,:-])\*[^\s,\]}]+/m.exec(text);
    const at = alias === null ? { line: 1, column: 1 } : position(alias.index + alias[0].indexOf('*'));
    return { ok: false, issues: [{ code: 'yaml_syntax', path: '(document)', message: `${(err as Error).message.split('\n')[0]} (at most ${MAX_ALIAS_COUNT} alias uses)`, ...at }], text };
  }
  const validate = configValidator();
  if (!validate(data) && !(coerceSubstituted(data, validate.errors ?? [], substituted) && validate(data))) {
    return { ok: false, issues: describeSchemaErrors(validate.errors ?? [], locate), text };
  }
  const config = data as Config;
  const ruleIssues = checkConfigRules(config, locate);
  if (ruleIssues.length > 0) return { ok: false, issues: ruleIssues, text };
  return { ok: true, config: deepFreeze(config), text, locate };
}

/** The fast reader's result when the config is valid; null when the full reader must run. */
function readQuickly(text: string, env: NodeJS.ProcessEnv): ConfigLoadResult | null {
  const substituted: string[] = [];
  const data = readFast(text, env, substituted);
  if (data === null) return null;
  const validate = configValidator();
  if (!validate(data) && !(coerceSubstituted(data, validate.errors ?? [], substituted) && validate(data))) return null;
  const config = data as Config;
  let located: Locate | null = null;
  // Places in the file are wanted only when compile finds a problem: the full reader parses the text then, once.
  const locate: Locate = (path, atKey) => (located ??= locatorOf(text))(path, atKey);
  if (checkConfigRules(config, locate).length > 0) return null;
  return { ok: true, config: deepFreeze(config), text, locate };
}

let yamlModule: typeof Yaml | undefined;
/**
 * The `yaml` package, loaded on first use: a valid config is read by
 * fast-read.ts, so a veer whose config is fine never loads its 70 modules.
 */
function fullReader(): typeof Yaml {
  return (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
}

/** `text` read by the full reader: its document, line:column of an offset, and where each config path is written. */
function readFully(text: string) {
  const { LineCounter, parseDocument } = fullReader();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const locate: Locate = (path, atKey) => locateNode(doc, path, position, atKey === true);
  return { doc, position, locate };
}

/** Where each config path is written in `text`, by the full reader. */
export function locatorOf(text: string): Locate {
  return readFully(text).locate;
}

/** Checks that span several fields of the process-level sections. */
function checkConfigRules(config: Config, locate: Locate): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const listen = parseListenAddress(config.listen);
  if (!listen) issues.push(issue('invalid_listen', ['listen'], `"${config.listen}" is not an address such as 0.0.0.0:8080`, locate));
  const admin = parseListenAddress(config.admin.listen);
  if (!admin) {
    issues.push(issue('invalid_listen', ['admin', 'listen'], `"${config.admin.listen}" is not an address such as 127.0.0.1:9901`, locate));
  } else if (!isLoopbackHost(admin.host) && !config.admin.token) {
    issues.push(
      issue('admin_token_required', ['admin', 'listen'], `the admin API listens on ${admin.host}, reachable from other machines, so admin.token must be set`, locate),
    );
  }
  if (listen && admin && listen.port !== 0 && listen.port === admin.port && (listen.host === admin.host || listen.host === '0.0.0.0' || admin.host === '0.0.0.0')) {
    issues.push(issue('invalid_listen', ['admin', 'listen'], `the admin API and the data plane cannot share port ${admin.port}`, locate));
  }
  if (config.tls !== undefined) {
    const tls = parseListenAddress(config.tls.listen);
    if (!tls) issues.push(issue('invalid_listen', ['tls', 'listen'], `"${config.tls.listen}" is not an address such as 0.0.0.0:8443`, locate));
    else if (tls.port !== 0 && [listen, admin].some((other) => other && other.port === tls.port && (other.host === tls.host || other.host === '0.0.0.0' || tls.host === '0.0.0.0'))) {
      issues.push(issue('invalid_listen', ['tls', 'listen'], `the TLS listener cannot share port ${tls.port} with listen or admin.listen`, locate));
    }
  }
  if (config.state.store === 'etcd' && !config.state.etcd) {
    issues.push(issue('required', ['state', 'etcd'], 'is required when state.store is etcd (e.g. { endpoints: [http://127.0.0.1:2379] })', locate));
  }
  if (config.services.length === 0 && config.include === undefined) {
    issues.push(issue('schema', ['services'], 'must list at least one service (or include: Kubernetes manifests)', locate));
  }
  if (config.state.etcd) for (const i of checkEtcdRules(config.state.etcd)) issues.push(issue(i.code, i.path, i.message, locate));
  return issues;
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every scalar value, in place.
 * `substituted` receives the JSON pointer of every value that was a single
 * reference, for coerceSubstituted.
 */
function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, locate: Locate, substituted: string[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  fullReader().visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const path = pathOf(ancestors, node);
      if (isWholeReference(node.value)) substituted.push(toPointer(path));
      const value = node.value;
      const filled = substituteValue(value, env, (kind, name) =>
        issues.push(
          kind === 'env_syntax'
            ? issue('env_syntax', path, 'has an unterminated or malformed ${...} reference', locate)
            : issue('env_unset', path, `refers to environment variable ${name}, which is not set (use \${${name}:-default} for a default)`, locate),
        ),
      );
      if (filled !== null) node.value = filled;
    },
  });
  return issues;
}

/**
 * Environment values are strings. Where the schema wants a number or a
 * boolean (`workers: ${WORKERS}`), a value that was wholly one `${VAR}` and
 * reads as one is converted, guided by the schema's own type errors; nothing
 * else is coerced, so `value: "1.10"` stays a string. True when it changed anything.
 */
function coerceSubstituted(data: unknown, errors: readonly ErrorObject[], substituted: readonly string[]): boolean {
  let changed = false;
  for (const e of errors) {
    if (e.keyword !== 'type' || !substituted.includes(e.instancePath)) continue;
    const wanted = String((e.params as { type: string }).type);
    const segments = splitInstancePath(e.instancePath);
    const last = segments.pop();
    let parent: unknown = data;
    for (const s of segments) parent = (parent as Record<string | number, unknown>)[s];
    const holder = parent as Record<string | number, unknown>;
    const raw = last === undefined ? undefined : holder[last];
    if (typeof raw !== 'string' || last === undefined) continue;
    if ((wanted.includes('integer') && /^-?[0-9]+$/.test(raw)) || (wanted.includes('number') && /^-?[0-9]+(\.[0-9]+)?$/.test(raw))) {
      holder[last] = Number(raw);
      changed = true;
    } else if (wanted.includes('boolean') && (raw === 'true' || raw === 'false')) {
      holder[last] = raw === 'true';
      changed = true;
    }
  }
  return changed;
}

/** Rebuilds the document path of `node` from the visitor's ancestors. */
function pathOf(ancestors: readonly unknown[], node: unknown): (string | number)[] {
  const { isMap, isScalar } = fullReader();
  const path: (string | number)[] = [];
  const chain = [...ancestors, node];
  for (let i = 1; i < chain.length; i++) {
    const parent = chain[i - 1];
    const child = chain[i];
    if (isMap(parent)) continue;
    if (parent && typeof parent === 'object' && 'items' in parent && Array.isArray(parent.items)) {
      path.push(parent.items.indexOf(child));
    } else if (parent && typeof parent === 'object' && 'key' in parent) {
      const k = (parent as { key: unknown }).key;
      path.push(isScalar(k) ? String(k.value) : String(k));
    }
  }
  return path;
}

function issue(code: ConfigIssueCode, path: ConfigPath, message: string, locate: Locate): ConfigIssue {
  return { code, path: formatConfigPath(path), message, ...locate(path) };
}

function locateNode(
  doc: Document,
  path: ConfigPath,
  position: (offset: number) => { line: number; column: number },
  atKey: boolean,
): { line: number; column: number } | undefined {
  const { isMap, isScalar } = fullReader();
  const last = path[path.length - 1];
  if (atKey && typeof last === 'string') {
    const parent = doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
      if (pair && isScalar(pair.key) && pair.key.range) return position(pair.key.range[0]);
    }
  }
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return position(node.range[0]);
  }
  // Nothing written at or above the path (an empty file): the document's start.
  return position(0);
}

function splitInstancePath(instancePath: string): (string | number)[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** Turns ajv's errors into one issue per problem, collapsing union branches. */
function describeSchemaErrors(errors: readonly ErrorObject[], locate: Locate): ConfigIssue[] {
  const branchOf = (u: ErrorObject, e: ErrorObject) =>
    e.keyword !== 'anyOf' && e.instancePath.startsWith(u.instancePath) && e.schemaPath.startsWith(u.schemaPath.replace(/\/anyOf$/, '/anyOf/'));
  // A value that took one form of a union and failed inside it (a long-form upstream with a bad
  // health path) is told what is wrong inside, not only "must be one of the forms".
  const within = (u: ErrorObject, e: ErrorObject) => branchOf(u, e) && e.instancePath.length > u.instancePath.length;
  const unions = errors.filter((e) => e.keyword === 'anyOf' && !errors.some((d) => within(e, d)));
  const insideUnion = (e: ErrorObject) =>
    e.keyword !== 'anyOf' && errors.some((u) => u.keyword === 'anyOf' && branchOf(u, e) && !(within(u, e) && !unions.includes(u)));
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  // Paths of required keys that a misspelt key was probably meant to be: one error (the typo) is enough.
  const misspelt = new Set<string>();
  for (const e of errors) {
    if (insideUnion(e) || (e.keyword === 'anyOf' && !unions.includes(e))) continue;
    const path = splitInstancePath(e.instancePath);
    let message: string;
    let code: ConfigIssueCode = 'schema';
    switch (e.keyword) {
      case 'required':
        path.push((e.params as { missingProperty: string }).missingProperty);
        message = 'is required';
        code = 'required';
        break;
      case 'additionalProperties': {
        const unknown = (e.params as { additionalProperty: string }).additionalProperty;
        path.push(unknown);
        const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        const guess = suggestKey(unknown, allowed);
        if (guess) misspelt.add(formatConfigPath([...path.slice(0, -1), guess]));
        message = `is not a known key${guess ? `; did you mean "${guess}"?` : ''}${allowed.length ? ` (expected one of: ${allowed.join(', ')})` : ''}`;
        code = 'unknown_key';
        break;
      }
      case 'anyOf':
        message = `must be ${(e.parentSchema as { description?: string } | undefined)?.description ?? 'one of the allowed forms'}`;
        break;
      case 'pattern':
        message = `must be ${(e.parentSchema as { description?: string } | undefined)?.description ?? `of the form ${(e.params as { pattern: string }).pattern}`}`;
        break;
      case 'type': {
        // A described field (a duration, a name...) says what it expects, not just its JSON type.
        const description = (e.parentSchema as { description?: string } | undefined)?.description;
        message = description ? `must be ${description}` : (e.message ?? 'is invalid');
        break;
      }
      case 'minProperties':
        message = 'must not be empty';
        break;
      default:
        message = e.message ?? 'is invalid';
    }
    const key = `${formatConfigPath(path)}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ code, path: formatConfigPath(path), message, ...locate(path, code === 'unknown_key') });
  }
  return issues.filter((i) => !(i.code === 'required' && misspelt.has(i.path)));
}

/** The allowed key closest to a mistyped one (at most a third of its letters off), if any. */
function suggestKey(unknown: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(unknown.length / 3)) + 1;
  for (const candidate of allowed) {
    const d = editDistance(unknown.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** Freezes a plain-data tree so no one can change a published config. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
