// Metric checks from Prometheus: fill a query's placeholders, ask the HTTP
// API for its value now (an instant query), judge it against [min, max].
//
//   query ──{{service}} {{canary}} {{stable}} {{interval}}──> PromQL
//         ──POST /api/v1/query──> one sample ──in [min, max]?──> pass | fail
//                                 └── error, timeout, NaN, Inf, no data,
//                                     several series ──────────> inconclusive
//
// Inconclusive is never a pass: the check counts it as the engine counts a
// window with too little traffic.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Agent, Dispatcher } from 'undici';
import type { PrometheusConfig } from '../config/index.ts';
import type { MetricCheck, MetricResult } from '../state/index.ts';
import { loadUndici } from './http-client.ts';

/** What a query's placeholders are filled with. */
export interface QueryContext {
  readonly service: string;
  readonly canary: string;
  /** The stable versions (joined with `|`, for `=~`). */
  readonly stables: readonly string[];
  readonly intervalMs: number;
}

/** The longest a metric query may take (and at most the analysis interval). */
export const MAX_QUERY_TIMEOUT_MS = 10_000;

/** `{{name}}` as compile accepts it (spaces inside allowed). */
const PLACEHOLDER = /\{\{\s*([a-z]+)\s*\}\}/g;

/** A PromQL duration for `ms`: the largest unit that divides it (`1m`, `90s`, `400ms`). */
export function promDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms));
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (whole % size === 0) return `${whole / size}${unit}`;
  return `${whole}ms`;
}

/** The query with its placeholders filled in. */
export function fillQuery(query: string, ctx: QueryContext): string {
  const values: Record<string, string> = { service: ctx.service, canary: ctx.canary, stable: ctx.stables.join('|'), interval: promDuration(ctx.intervalMs) };
  return query.replace(PLACEHOLDER, (whole, name: string) => values[name] ?? whole);
}

/** Judges a value against the check's range. */
export function judgeMetric(check: MetricCheck, query: string, value: number | null, problem: string | null): MetricResult {
  if (problem !== null || value === null) return { name: check.name, verdict: 'inconclusive', value: null, query, reason: `${check.name}: ${problem ?? 'no value'}` };
  if (!Number.isFinite(value)) return { name: check.name, verdict: 'inconclusive', value: null, query, reason: `${check.name}: the query answered ${value}, not a number to judge` };
  const range = `${check.min ?? '-inf'}, ${check.max ?? '+inf'}`;
  if ((check.min !== null && value < check.min) || (check.max !== null && value > check.max)) {
    return { name: check.name, verdict: 'fail', value, query, reason: `${check.name} = ${formatValue(value)} is outside [${range}]` };
  }
  return { name: check.name, verdict: 'pass', value, query, reason: `${check.name} = ${formatValue(value)} is within [${range}]` };
}

/** A value in a few significant digits. */
export function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

interface QueryAnswer {
  status?: string;
  error?: string;
  errorType?: string;
  data?: { resultType?: string; result?: unknown };
}

/** Queries one Prometheus; keeps one connection pool per CA file. */
export class PrometheusClient {
  readonly #configDir: string;
  /** The dispatcher for a CA file, and the CA it was built with (a changed file builds a new one). */
  readonly #agents = new Map<string, { ca: string; agent: Agent }>();

  constructor(configDir: string) {
    this.#configDir = configDir;
  }

  /** Runs every check of one analysis at once; never throws (a failure is an inconclusive result). */
  async check(source: PrometheusConfig | undefined, checks: readonly MetricCheck[], ctx: QueryContext, timeoutMs: number): Promise<MetricResult[]> {
    return Promise.all(
      checks.map(async (check) => {
        const query = fillQuery(check.query, ctx);
        if (source === undefined) return judgeMetric(check, query, null, 'no analysis.prometheus in the running config');
        try {
          return judgeMetric(check, query, await this.query(source, query, timeoutMs), null);
        } catch (err) {
          return judgeMetric(check, query, null, (err as Error).message);
        }
      }),
    );
  }

  /** The one value of an instant query now; throws with the reason when there is none to judge. */
  async query(source: PrometheusConfig, query: string, timeoutMs: number): Promise<number> {
    const url = `${source.address.replace(/\/+$/, '')}/api/v1/query`;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (source.bearerToken !== undefined) headers.authorization = `Bearer ${source.bearerToken}`;
    else if (source.basicAuth !== undefined) headers.authorization = `Basic ${Buffer.from(`${source.basicAuth.username}:${source.basicAuth.password}`).toString('base64')}`;
    const body = new URLSearchParams({ query, timeout: `${Math.max(1, Math.floor(timeoutMs / 1000))}s` }).toString();
    const dispatcher = await this.#dispatcher(source);
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number;
    let text: string;
    try {
      const { request } = await loadUndici();
      const res = await request(url, { method: 'POST', headers, body, signal, dispatcher });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new Error(signal.aborted ? `Prometheus did not answer within ${timeoutMs}ms` : `cannot query Prometheus at ${source.address}: ${e.code ?? e.message}`, { cause: err });
    }
    let answer: QueryAnswer;
    try {
      answer = JSON.parse(text) as QueryAnswer;
    } catch (err) {
      throw new Error(`Prometheus answered HTTP ${status} with a body that is not JSON`, { cause: err });
    }
    if (answer.status !== 'success') throw new Error(`Prometheus refused the query (HTTP ${status}${answer.errorType ? `, ${answer.errorType}` : ''}): ${answer.error ?? 'no reason given'}`);
    return valueOf(answer.data);
  }

  /** Closes every connection pool. */
  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.agent.close()));
  }

  async #dispatcher(source: PrometheusConfig): Promise<Dispatcher | undefined> {
    if (source.ca === undefined) return undefined;
    const file = resolve(this.#configDir, source.ca);
    // Read at every check (a few KB): a renewed CA applies without a reload.
    const ca = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read analysis.prometheus.ca ${file}: ${err.code ?? err.message}`, { cause: err });
    });
    const known = this.#agents.get(file);
    if (known !== undefined && known.ca === ca) return known.agent;
    if (known !== undefined) void known.agent.close();
    const agent = new (await loadUndici()).Agent({ connect: { ca } });
    this.#agents.set(file, { ca, agent });
    return agent;
  }
}

/** A sample value as Prometheus writes it (`+Inf`, `-Inf` and `NaN` included). */
function sampleValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** The one number of a vector or scalar answer. */
function valueOf(data: QueryAnswer['data']): number {
  const type = data?.resultType;
  const result = data?.result;
  if (type === 'scalar') return sampleValue((result as [number, string])[1]);
  if (type !== 'vector' || !Array.isArray(result)) throw new Error(`the query answered a ${type ?? 'malformed'} result; it must answer one number (a scalar or a vector of one series)`);
  if (result.length === 0) throw new Error('no data: the query answered an empty vector');
  if (result.length > 1) throw new Error(`the query answered ${result.length} series; it must answer one (aggregate it, e.g. with sum)`);
  return sampleValue((result[0] as { value: [number, string] }).value[1]);
}
