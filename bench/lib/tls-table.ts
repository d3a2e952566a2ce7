// Samples of the TLS benchmarks reduced to medians, with ratios against
// baselines measured in the same run, and printed as Markdown tables.
//
//   sample: (bench, case, tool, rep) -> req/s, p50, p99, proxy CPU µs/req, client cores
//   row:    medians over reps; each ratio is the median of per-rep ratios against
//           the baseline's sample of the same rep (close in time: a busy neighbour
//           weighs on both)

import { formatMarkdownTable, median, type LoadSample } from './table.ts';

/** The three TLS benchmarks. */
export type TlsBenchName = 'keepalive' | 'handshake' | 'h2';

/**
 * One measured load run of one case with one tool ("autocannon", "h2load
 * --h1", "h2load": ALPN h2 when the server has it); rps counts responses,
 * one per connection in the handshake bench, and so does CPU µs per request.
 */
export interface TlsSample extends Omit<LoadSample, 'tool'> {
  readonly bench: TlsBenchName;
  readonly tool: string;
  /** What ALPN settled on. */
  readonly protocol: string | null;
  /** False when the tool meant h2 and the server answered over something else: the sample has no numbers. */
  readonly negotiated: boolean;
  /** Load generator CPU over the run divided by its wall time: near 1 it is the limit, not the server. */
  readonly clientCores: number;
  /** Busy CPU of the whole machine over the run, in cores (2 = saturated on 2 cores): proxy, client, upstream and any neighbour. */
  readonly machineCores: number;
}

/** A baseline a row is divided by: the same bench, case or tool unless named. */
export interface TlsBaseline {
  readonly label: string;
  readonly bench?: TlsBenchName;
  readonly name?: string;
  readonly tool?: string;
}

/** Medians of one (bench, case, tool) and its paired ratios. */
export interface TlsRow {
  readonly bench: TlsBenchName;
  readonly name: string;
  readonly tool: string;
  readonly reps: number;
  readonly protocol: string | null;
  readonly negotiated: boolean;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuUsPerRequest: number | null;
  readonly clientCores: number;
  readonly machineCores: number;
  readonly errors: number;
  /** By baseline label: this row's req/s and CPU per request over the baseline's (above 1: more req/s, more CPU). */
  readonly ratios: Readonly<Record<string, { readonly rps: number | null; readonly cpu: number | null }>>;
}

const keyOf = (bench: string, name: string, tool: string) => `${bench}\u0000${name}\u0000${tool}`;

/** Groups samples by (bench, case, tool), in first-seen order, and takes medians and paired ratios. */
export function summarizeTls(samples: readonly TlsSample[], baselines: Readonly<Record<TlsBenchName, readonly TlsBaseline[]>>): TlsRow[] {
  const groups = new Map<string, TlsSample[]>();
  for (const s of samples) {
    const key = keyOf(s.bench, s.name, s.tool);
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const paired = (group: readonly TlsSample[], b: TlsBaseline, pick: (s: TlsSample) => number | null): number | null => {
    const first = group[0]!;
    const base = groups.get(keyOf(b.bench ?? first.bench, b.name ?? first.name, b.tool ?? first.tool)) ?? [];
    if (base === group) return null;
    const ratios: number[] = [];
    for (const s of group) {
      const other = base.find((x) => x.rep === s.rep && x.negotiated);
      const num = s.negotiated ? pick(s) : null;
      const den = other === undefined ? null : pick(other);
      if (num !== null && den !== null && den > 0) ratios.push(num / den);
    }
    return ratios.length > 0 ? median(ratios) : null;
  };
  return [...groups.values()].map((g) => {
    const ok = g.filter((s) => s.negotiated);
    const cpu = ok.map((s) => s.cpuUsPerRequest).filter((c): c is number => c !== null);
    const ratios: Record<string, { rps: number | null; cpu: number | null }> = {};
    for (const b of baselines[g[0]!.bench]) ratios[b.label] = { rps: paired(g, b, (s) => s.rps), cpu: paired(g, b, (s) => s.cpuUsPerRequest) };
    return {
      bench: g[0]!.bench,
      name: g[0]!.name,
      tool: g[0]!.tool,
      reps: g.length,
      protocol: g[g.length - 1]!.protocol,
      negotiated: ok.length > 0,
      rps: median(ok.map((s) => s.rps)),
      p50: median(ok.map((s) => s.p50)),
      p99: median(ok.map((s) => s.p99)),
      cpuUsPerRequest: cpu.length > 0 ? median(cpu) : null,
      clientCores: median(g.map((s) => s.clientCores)),
      machineCores: median(g.map((s) => s.machineCores)),
      errors: g.reduce((a, s) => a + s.errors, 0),
      ratios,
    };
  });
}

const num = (v: number | null, digits: number) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const times = (v: number | null | undefined) => (v == null ? '-' : `${v.toFixed(2)}x`);

/**
 * One benchmark's table: a line per case and tool with req/s (or conn/s: `unit`), latency, proxy
 * CPU, a req/s and a CPU ratio per baseline, and the client's CPU. A row whose h2 was not
 * negotiated says so in its protocol column and has no numbers.
 */
export function formatTlsTable(rows: readonly TlsRow[], baselines: readonly TlsBaseline[], unit = 'req/s'): string {
  const per = unit === 'req/s' ? 'req' : 'conn';
  const header = ['case', 'tool', 'protocol', unit, 'p50 ms', 'p99 ms', `CPU µs/${per}`];
  for (const b of baselines) header.push(`${unit} ${b.label}`, `CPU ${b.label}`);
  header.push('client cores', 'machine cores', 'errors');
  const body = rows.map((r) => {
    const cells = [r.name, r.tool, r.negotiated ? (r.protocol ?? '-') : `not negotiated (${r.protocol ?? 'no ALPN'})`, num(r.rps, 0), num(r.p50, 2), num(r.p99, 2), num(r.cpuUsPerRequest, 1)];
    for (const b of baselines) cells.push(times(r.ratios[b.label]?.rps), times(r.ratios[b.label]?.cpu));
    cells.push(num(r.clientCores, 2), num(r.machineCores, 2), String(r.errors));
    return cells;
  });
  return formatMarkdownTable([header, ...body], header.map((_, c) => c >= 3));
}
