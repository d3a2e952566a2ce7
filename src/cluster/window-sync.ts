// Rollout analysis runs in the primary, but the traffic is counted in the
// workers. Each worker reports, every 250 ms, what its per-version windows
// gained since its last report; the primary adds that into its own
// recorder's windows, which the rollout engine reads as if it had served the
// traffic itself. Counts are conserved: a slot still filling is sent again
// later with only what it gained meanwhile.
//
//   worker slot s (its clock)   ──delta──>   primary slot p (its clock)
//   p = floor((s * slotMs + primaryNowOnReceipt - workerNowOnSend) / primarySlotMs)
//
// Each report carries the worker's clock reading, so no wall clocks are
// compared (performance.now is monotonic, process-relative). Slots are placed
// by where they start, and the IPC delay only moves them later, so a worker's
// slot never lands in the primary's future; the primary's view lags the
// workers' by one report at most.

import type { ExchangeRecorder, VersionRecord } from '../metrics/index.ts';

/** What one version's window gained in one slot: counts shaped as VersionWindow.readSlot returns them. */
export interface WindowDelta {
  readonly service: string;
  readonly version: string;
  readonly slot: number;
  readonly counts: readonly number[];
}

/** Worker side: turns the recorder's windows into deltas since the previous call. */
export class WindowReporter {
  readonly #recorder: ExchangeRecorder;
  readonly #now: () => number;
  /** Per version: the slot that was current at the last report and what it held then. */
  #sent = new Map<VersionRecord, { slot: number; counts: Float64Array | null }>();

  constructor(recorder: ExchangeRecorder, now: () => number = () => performance.now()) {
    this.#recorder = recorder;
    this.#now = now;
  }

  /** Everything the windows gained since the last call (empty when nothing happened). */
  collect(): WindowDelta[] {
    const deltas: WindowDelta[] = [];
    const sent = new Map<VersionRecord, { slot: number; counts: Float64Array | null }>();
    const now = this.#now();
    for (const record of this.#recorder.records()) {
      const window = record.window;
      const current = Math.floor(now / window.slotMs);
      const last = this.#sent.get(record);
      // A version seen for the first time: its window is at most a report old.
      const from = Math.max(last?.slot ?? current - 8, current - window.slots + 1);
      for (let slot = from; slot <= current; slot++) {
        const counts = window.readSlot(slot);
        if (counts === null) continue;
        const already = last !== undefined && slot === last.slot ? last.counts : null;
        if (already !== null) for (let i = 0; i < counts.length; i++) counts[i]! -= already[i]!;
        if (counts[0]! > 0) deltas.push({ service: record.service, version: record.version, slot, counts: Array.from(counts) });
      }
      sent.set(record, { slot: current, counts: window.readSlot(current) });
    }
    this.#sent = sent;
    return deltas;
  }
}

/**
 * Primary side: adds a worker's deltas into `recorder`'s windows; versions it
 * does not know are dropped. `from.sentAt` is the worker's clock when it sent
 * them, `now` the primary's (the recorder's clock) on receipt.
 */
export function mergeWindowDeltas(
  recorder: ExchangeRecorder,
  deltas: readonly WindowDelta[],
  from: { readonly sentAt: number; readonly slotMs: number },
  now: number = performance.now(),
): void {
  for (const delta of deltas) {
    const record = recorder.recordByName(delta.service, delta.version);
    if (record === null) continue;
    const slot = Math.floor((delta.slot * from.slotMs + now - from.sentAt) / record.window.slotMs);
    record.window.addToSlot(slot, delta.counts);
  }
}
