// Reducing repeated samples to medians and printing them as Markdown
// tables (so the same text goes to the terminal and to bench/README.md).

/** One measured load run of one case with one tool. */
export interface LoadSample {
  readonly name: string;
  readonly tool: 'autocannon' | 'wrk';
  readonly rep: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Proxy CPU microseconds per request; null for the direct case (no proxy). */
  readonly cpuUsPerRequest: number | null;
  readonly requests: number;
  readonly errors: number;
  /** 1-minute load average when the sample ended: a busy neighbour shows up here. */
  readonly loadavg1: number;
}

/** Medians of a case's samples with one tool, and ratios against the two Node baselines. */
export interface LoadRow {
  readonly name: string;
  readonly tool: 'autocannon' | 'wrk';
  readonly reps: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuUsPerRequest: number | null;
  readonly errors: number;
  /**
   * req/s of this row divided by the bare undici proxy's / node-http-proxy's (same tool): the
   * median of per-repetition ratios, since runs of one repetition are minutes apart at most
   * and a busy neighbour slows both sides of a pair alike.
   */
  readonly rpsVsUndici: number | null;
  readonly rpsVsHttpProxy: number | null;
  /** req/s of this row divided by @fastify/http-proxy's, paired the same way. */
  readonly rpsVsFastify: number | null;
  /** p99 of this row divided by the bare undici proxy's: above 1 is a worse tail. */
  readonly p99VsUndici: number | null;
  /** CPU µs/req of this row divided by the baseline's: above 1 costs more. */
  readonly cpuVsUndici: number | null;
  readonly cpuVsHttpProxy: number | null;
}

/** Name of the bare undici case, the first baseline. */
export const UNDICI_CASE = 'bare-undici';
/** Name of the node-http-proxy case, the second baseline. */
export const HTTP_PROXY_CASE = 'node-http-proxy';
/** Name of the @fastify/http-proxy case, the third. */
export const FASTIFY_CASE = 'fastify-http-proxy';

/** Median of the finite numbers in `values` (NaN when there are none); robust to a noisy rep. */
export function median(values: readonly number[]): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = xs.length >> 1;
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** Groups samples by case and tool (in first-seen order) and takes medians. */
export function summarizeLoad(samples: readonly LoadSample[]): LoadRow[] {
  const groups = new Map<string, LoadSample[]>();
  for (const s of samples) {
    const key = `${s.tool}\u0000${s.name}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const base = [...groups.values()].map((g) => {
    const cpu = g.map((s) => s.cpuUsPerRequest).filter((c): c is number => c !== null);
    return {
      name: g[0]!.name,
      tool: g[0]!.tool,
      reps: g.length,
      rps: median(g.map((s) => s.rps)),
      p50: median(g.map((s) => s.p50)),
      p99: median(g.map((s) => s.p99)),
      cpuUsPerRequest: cpu.length > 0 ? median(cpu) : null,
      errors: g.reduce((a, s) => a + s.errors, 0),
    };
  });
  const pairedRatio = (r: { name: string; tool: string }, baseline: string, pick: (s: LoadSample) => number | null): number | null => {
    const ratios: number[] = [];
    for (const s of groups.get(`${r.tool}\u0000${r.name}`) ?? []) {
      const b = groups.get(`${r.tool}\u0000${baseline}`)?.find((x) => x.rep === s.rep);
      const num = pick(s);
      const den = b === undefined ? null : pick(b);
      if (num !== null && den !== null && den > 0) ratios.push(num / den);
    }
    return ratios.length > 0 ? median(ratios) : null;
  };
  return base.map((r) => ({
    ...r,
    rpsVsUndici: pairedRatio(r, UNDICI_CASE, (s) => s.rps),
    rpsVsHttpProxy: pairedRatio(r, HTTP_PROXY_CASE, (s) => s.rps),
    rpsVsFastify: pairedRatio(r, FASTIFY_CASE, (s) => s.rps),
    p99VsUndici: pairedRatio(r, UNDICI_CASE, (s) => s.p99),
    cpuVsUndici: pairedRatio(r, UNDICI_CASE, (s) => s.cpuUsPerRequest),
    cpuVsHttpProxy: pairedRatio(r, HTTP_PROXY_CASE, (s) => s.cpuUsPerRequest),
  }));
}

/** Renders rows (first row is the header) as a Markdown table with aligned columns. */
export function formatMarkdownTable(rows: readonly (readonly string[])[], rightAlign: readonly boolean[] = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const cell = (text: string, c: number) => (rightAlign[c] ? text.padStart(widths[c]!) : text.padEnd(widths[c]!));
  const line = (r: readonly string[]) => `| ${r.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (rightAlign[c] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

const num = (v: number | null, digits: number) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const times = (v: number | null) => (v === null ? '-' : `${v.toFixed(2)}x`);

/** The load table: req/s, p50, p99, CPU µs/req and ratios, one line per case and tool. */
export function formatLoadTable(rows: readonly LoadRow[]): string {
  const header = [
    'case',
    'tool',
    'req/s',
    'p50 ms',
    'p99 ms',
    'CPU µs/req',
    'req/s vs undici',
    'req/s vs http-proxy',
    'req/s vs fastify',
    'p99 vs undici',
    'CPU vs undici',
    'CPU vs http-proxy',
    'errors',
  ];
  const body = rows.map((r) => [
    r.name,
    r.tool,
    num(r.rps, 0),
    num(r.p50, 2),
    num(r.p99, 2),
    num(r.cpuUsPerRequest, 1),
    times(r.rpsVsUndici),
    times(r.rpsVsHttpProxy),
    times(r.rpsVsFastify),
    times(r.p99VsUndici),
    times(r.cpuVsUndici),
    times(r.cpuVsHttpProxy),
    String(r.errors),
  ]);
  return formatMarkdownTable([header, ...body], header.map((_, c) => c >= 2)); // numbers right-aligned
}

/** One router measurement reduced to its median. */
export interface RouterRow {
  readonly services: number;
  readonly scenario: string;
  readonly nsPerDecision: number;
  readonly decisionsPerSecond: number;
  readonly reps: number;
}

/** Scenarios whose decision ends in a sticky split's hash (after whatever found the service). */
const ENDS_STICKY = new Set(['sticky', 'prefix', 'rules: 200 under one host']);

/**
 * The router table: ns/decision and decisions/s per table size and
 * scenario; `x rule` is each row against the smallest table's `rule` case
 * of the same run (today's rule decision), and `x sticky`, for the rows
 * that end in the sticky hash, against its `sticky` case: what finding the
 * service costs on top of that hash.
 */
export function formatRouterTable(rows: readonly RouterRow[]): string {
  const header = ['services', 'scenario', 'ns/decision', 'decisions/s', 'x rule', 'x sticky', 'reps'];
  const rule = rows.find((r) => r.scenario === 'rule')?.nsPerDecision ?? null;
  const sticky = rows.find((r) => r.scenario === 'sticky')?.nsPerDecision ?? null;
  const ratio = (r: RouterRow, base: number | null) => (base === null ? '-' : `${num(r.nsPerDecision / base, 2)}x`);
  const body = rows.map((r) => [
    String(r.services),
    r.scenario,
    num(r.nsPerDecision, 1),
    `${(r.decisionsPerSecond / 1e6).toFixed(2)} M`,
    ratio(r, rule),
    ENDS_STICKY.has(r.scenario) ? ratio(r, sticky) : '-',
    String(r.reps),
  ]);
  return formatMarkdownTable([header, ...body], [true, false, true, true, true, true, true]);
}
