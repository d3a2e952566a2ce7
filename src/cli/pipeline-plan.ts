// Reads a pipeline plan (PLAN.yaml for `veer pipeline run`): YAML, ${VAR}
// from the environment, a schema, then the checks that span fields (unique
// stage names, admin URLs, durations). A plan is checked whole before
// anything starts; every problem comes back with its path and line:column.
//
//   service: shop            canary: v2            onAbort: rollback | stop
//   stages:                  ──> groups, run one after the other:
//     - { name: dev, ... }        [dev]                     a stage: a group of one
//     - parallel: [eu, us]        [eu, us]   (parallel)     every stage at once

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { Duration, parseDuration } from '../config/index.ts';

/** One problem in a plan: a code, where (`stages[1].admin`, line:column) and what. */
export interface PlanIssue {
  readonly code: string;
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** One stage: a veer admin API (its token from the environment), and how long to soak after promotion. */
export interface PlanStage {
  readonly name: string;
  readonly admin: string;
  readonly token?: string;
  readonly soakMs: number;
  /** Where it is in the plan, e.g. `stages[2].parallel[0]`. */
  readonly path: string;
}

/** Stages that run together (`parallel: true`), or one stage. */
export interface PlanGroup {
  readonly parallel: boolean;
  readonly stages: readonly PlanStage[];
}

/** A checked plan. `fingerprint` covers everything but the tokens, so a state file can tell whether it belongs to this plan. */
export interface PipelinePlan {
  readonly service: string;
  readonly canary: string;
  readonly onAbort: 'rollback' | 'stop';
  readonly groups: readonly PlanGroup[];
  readonly fingerprint: string;
}

/** A plan's `service` when it carries a release: `release:NAME` (its `canary` is then NAME). */
export const RELEASE_PREFIX = 'release:';

/** The outcome of reading a plan. */
export type PlanResult = { readonly ok: true; readonly plan: PipelinePlan } | { readonly ok: false; readonly issues: readonly PlanIssue[] };

const Strict = { additionalProperties: false } as const;
const Name = Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$', description: 'a name of letters, digits, ".", "_" and "-" (up to 63)' });

const StageSchema = Type.Object(
  {
    name: Name,
    admin: Type.String({ minLength: 1, description: 'the veer admin URL, e.g. http://veer-admin.dev:9901' }),
    token: Type.Optional(Type.String({ description: 'the admin token, usually "${DEV_TOKEN}"' })),
    soak: Type.Optional(Duration),
  },
  { ...Strict, description: 'a stage such as { name: dev, admin: "http://veer-admin.dev:9901" }, or { parallel: [stages] }' },
);
const ParallelSchema = Type.Object({ parallel: Type.Array(Type.Unknown(), { minItems: 1, description: 'a list of stages' }) }, Strict);
const PlanSchema = Type.Object(
  {
    service: Type.Optional(Name),
    canary: Type.Optional(Name),
    release: Type.Optional(Name),
    onAbort: Type.Optional(Type.Unsafe<'rollback' | 'stop'>({ type: 'string', enum: ['rollback', 'stop'], description: 'rollback or stop' })),
    stages: Type.Array(Type.Unknown(), { minItems: 1, description: 'a list of stages' }),
  },
  Strict,
);

type StageT = Static<typeof StageSchema>;
type PlanT = Static<typeof PlanSchema>;

let validators: { plan: ValidateFunction; stage: ValidateFunction; parallel: ValidateFunction } | undefined;
function validatorsOf() {
  if (validators === undefined) {
    const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
    validators = { plan: ajv.compile(PlanSchema), stage: ajv.compile(StageSchema), parallel: ajv.compile(ParallelSchema) };
  }
  return validators;
}

type Path = readonly (string | number)[];

/** `['stages', 2, 'parallel', 0]` -> `stages[2].parallel[0]`. */
function formatPath(path: Path): string {
  let out = '';
  for (const s of path) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

/** Reads and checks the plan at `file`; never throws for bad content. */
export async function loadPlanFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PlanResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, issues: [{ code: 'plan_unreadable', path: '(file)', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  return parsePlanText(text, env);
}

/** Parses and checks plan text; pure apart from reading `env`. */
export function parsePlanText(text: string, env: NodeJS.ProcessEnv = process.env): PlanResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    return { ok: false, issues: doc.errors.map((e) => ({ code: 'yaml_syntax', path: '(document)', message: e.message.split('\n')[0]!, ...position(e.pos[0]) })) };
  }
  const issues: PlanIssue[] = [];
  const add = (code: string, path: Path, message: string) => issues.push({ code, path: formatPath(path), message, ...locate(doc, path, position) });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { ok: false, issues: [{ code: 'yaml_syntax', path: '(document)', message: (err as Error).message.split('\n')[0]! }] };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    add('schema', [], 'the plan must be a mapping with service, canary and stages');
    return { ok: false, issues };
  }
  data = substituteEnv(data, [], env, add);

  const v = validatorsOf();
  check(v.plan, data, [], add);
  const raw = data as PlanT;
  const groups: PlanGroup[] = [];
  if (Array.isArray(raw.stages)) {
    raw.stages.forEach((item, i) => {
      const isParallel = typeof item === 'object' && item !== null && !Array.isArray(item) && 'parallel' in item;
      if (!isParallel) {
        if (check(v.stage, item, ['stages', i], add)) groups.push({ parallel: false, stages: [stageOf(item as StageT, ['stages', i])] });
        return;
      }
      if (!check(v.parallel, item, ['stages', i], add)) return;
      const members = (item as { parallel: unknown[] }).parallel;
      const stages: PlanStage[] = [];
      members.forEach((m, j) => {
        if (check(v.stage, m, ['stages', i, 'parallel', j], add)) stages.push(stageOf(m as StageT, ['stages', i, 'parallel', j]));
      });
      if (stages.length === members.length) groups.push({ parallel: true, stages });
    });
  }
  checkTarget(raw, add);
  checkStages(rawStages(raw), add);
  if (issues.length > 0) return { ok: false, issues: issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)) };
  // A release plan runs the release through the same stages: its target is `release:NAME` (see StageClient).
  const plan = raw.release !== undefined ? { service: `${RELEASE_PREFIX}${raw.release}`, canary: raw.release, onAbort: raw.onAbort ?? 'stop', groups } : { service: raw.service!, canary: raw.canary!, onAbort: raw.onAbort ?? 'stop', groups };
  return { ok: true, plan: { ...plan, fingerprint: fingerprintOf(plan) } };
}

function stageOf(s: StageT, path: Path): PlanStage {
  return { name: s.name, admin: s.admin.replace(/\/+$/, ''), ...(s.token ? { token: s.token } : {}), soakMs: s.soak === undefined ? 0 : parseDuration(s.soak), path: formatPath(path) };
}

/** service + canary, or release (alone). */
function checkTarget(raw: PlanT, add: (code: string, path: Path, message: string) => void): void {
  if (raw.release !== undefined) {
    if (raw.service !== undefined) add('schema', ['service'], 'give service: (with canary:) or release:, not both');
    if (raw.canary !== undefined) add('schema', ['canary'], "a release names its canaries itself (its config's services:); leave canary: out");
    return;
  }
  if (raw.service === undefined) add('required', ['service'], 'is required: the service whose rollout the stages run');
  if (raw.canary === undefined) add('required', ['canary'], 'is required: the version every stage rolls out (the same in every stage)');
}

/** Every item of `stages` that looks like a stage (a mapping), with its path: checked for names and URLs even when its shape is wrong elsewhere. */
function rawStages(raw: PlanT): { value: Record<string, unknown>; path: Path }[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!Array.isArray(raw.stages)) return [];
  return raw.stages.flatMap((item, i) => {
    if (!isMap(item)) return [];
    if (!Array.isArray(item.parallel)) return [{ value: item, path: ['stages', i] }];
    return item.parallel.flatMap((m, j) => (isMap(m) ? [{ value: m, path: ['stages', i, 'parallel', j] }] : []));
  });
}

/** Unique names, http(s) admin URLs. */
function checkStages(stages: readonly { value: Record<string, unknown>; path: Path }[], add: (code: string, path: Path, message: string) => void): void {
  const seen = new Map<string, string>();
  for (const { value, path } of stages) {
    if (typeof value.name === 'string') {
      const first = seen.get(value.name);
      if (first !== undefined) add('duplicate_stage', [...path, 'name'], `"${value.name}" is already the name of ${first}; stage names must be unique`);
      else seen.set(value.name, formatPath(path));
    }
    if (typeof value.admin !== 'string') continue;
    const url = URL.canParse(value.admin) ? new URL(value.admin) : null;
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      add('invalid_admin_url', [...path, 'admin'], `"${value.admin}" is not an http:// or https:// URL such as http://veer-admin.dev:9901 (no query, no credentials: give the token in token:)`);
    }
  }
}

/** Validates `value` with `validate`; each error is added with its path below `base`. */
function check(validate: ValidateFunction, value: unknown, base: Path, add: (code: string, path: Path, message: string) => void): boolean {
  if (validate(value)) return true;
  for (const e of validate.errors ?? []) describeError(e, base, add);
  return false;
}

function describeError(e: ErrorObject, base: Path, add: (code: string, path: Path, message: string) => void): void {
  const at = [...base, ...e.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')))];
  const description = (e.parentSchema as TSchema | undefined)?.description;
  switch (e.keyword) {
    case 'required':
      add('required', [...at, (e.params as { missingProperty: string }).missingProperty], 'is required');
      return;
    case 'minItems':
      add('schema', at, `must list at least one stage`);
      return;
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      if (key === 'parallel' && base.includes('parallel')) {
        add('schema', [...at, key], 'parallel groups do not nest: list the stages of a group one by one');
        return;
      }
      const known = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      add('unknown_key', [...at, key], `is not a key here (known: ${known.join(', ')})`);
      return;
    }
    default:
      add('schema', at, description ? `must be ${description} (got ${JSON.stringify(e.data)})` : (e.message ?? 'is not valid'));
  }
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string value; an unset variable without a default is an issue. */
function substituteEnv(value: unknown, path: Path, env: NodeJS.ProcessEnv, add: (code: string, path: Path, message: string) => void): unknown {
  if (typeof value === 'string') {
    if (!value.includes('$')) return value;
    return value.replace(/\$\{([^}]*)\}|\$\{/g, (whole, inner: string | undefined) => {
      const m = inner === undefined ? null : /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(inner);
      if (m === null) {
        add('env_syntax', path, `has a malformed ${JSON.stringify(whole)} (use \${VAR} or \${VAR:-default})`);
        return whole;
      }
      const set = env[m[1]!];
      if (set !== undefined) return set;
      if (m[2] !== undefined) return m[2];
      add('env_unset', path, `refers to environment variable ${m[1]}, which is not set`);
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...path, i], env, add));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...path, k], env, add)]));
  }
  return value;
}

/** Where `path` is written (the nearest written ancestor when it is missing). */
function locate(doc: Document, path: Path, position: (offset: number) => { line: number; column: number }): { line: number; column: number } | Record<string, never> {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return position(node.range[0]);
  }
  return {};
}

/** A hash of the plan without its tokens. */
function fingerprintOf(plan: Omit<PipelinePlan, 'fingerprint'>): string {
  const shape = { ...plan, groups: plan.groups.map((g) => ({ parallel: g.parallel, stages: g.stages.map((s) => ({ name: s.name, admin: s.admin, soakMs: s.soakMs })) })) };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/** `PLAN.yaml:12:7 stages[1].admin: message [code]` */
export function formatPlanIssue(file: string, issue: PlanIssue): string {
  const where = issue.line !== undefined ? `${file}:${issue.line}:${issue.column}` : file;
  return `${where} ${issue.path}: ${issue.message} [${issue.code}]`;
}

/** Every stage of the plan, in order. */
export function stagesOf(plan: PipelinePlan): PlanStage[] {
  return plan.groups.flatMap((g) => g.stages);
}
