// Gradual weight moves: POST .../shift {"to":"v2","step":10,"every":"30s","until":100}
// moves `step` points of traffic to (or, when `until` is below the current
// share, away from) one version at once, then again every `every`, until it
// has `until` percent. The other versions keep their proportions. Each move
// is a command to state/ and a history line; a restart picks the shift up
// where the store says it was.

import { Type, type Static } from '@sinclair/typebox';
import { VeerError } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import { Duration, isReleaseActive, isRolloutActive, parseDuration, roundPercent, splitAround, type RuntimeState, type ServiceChange, type ShiftRecord } from '../state/index.ts';
import type { CompiledService } from '../table/index.ts';

/** Body of POST .../shift. */
export const ShiftBody = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 253 }),
    step: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
    every: Duration,
    until: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  },
  { additionalProperties: false },
);
/** Body of POST .../shift. */
export type ShiftBodyT = Static<typeof ShiftBody>;

/** Moves faster than this are refused. */
export const MIN_SHIFT_EVERY_MS = 100;

/** What a shift call answers. */
export interface ShiftStatus {
  readonly service: string;
  readonly weights: Readonly<Record<string, number>>;
  /** The running shift, or null once it reached `until`. */
  readonly shift: ShiftRecord | null;
}

function percentOf(service: CompiledService, version: string): number {
  const i = service.split.versions.findIndex((v) => v.name === version);
  return i === -1 ? 0 : (service.split.percents[i] ?? 0);
}

/** One move of `shift` from the service's current split. */
function move(service: CompiledService, shift: ShiftRecord, now: number, action: string, why: string): ServiceChange {
  const current = percentOf(service, shift.to);
  const next = roundPercent(current < shift.until ? Math.min(shift.until, current + shift.step) : Math.max(shift.until, current - shift.step));
  const weights = splitAround(
    service.versions.map((v) => v.name),
    shift.to,
    next,
    service.split.weights,
  );
  const done = next === shift.until;
  const reason = `${why}: ${shift.to} ${current}% -> ${next}%${done ? ` (reached ${shift.until}%, shift done)` : `, next move in ${shift.everyMs}ms`}`;
  return { weights, shift: done ? null : { ...shift, lastStepAt: new Date(now).toISOString() }, action: done ? 'shift.done' : action, reason, details: { shift: shift.id } };
}

/** Runs shifts with one timer per service. */
export class ShiftDriver {
  readonly #runtime: RuntimeState;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #stopped = false;

  constructor(options: { runtime: RuntimeState; log: Logger; now: () => number }) {
    this.#runtime = options.runtime;
    this.#log = options.log;
    this.#now = options.now;
    this.#runtime.onChange((service) => this.#schedule(service));
    // Only the leader moves shifts (with the file store, always this replica).
    this.#runtime.leadership.onLeadership(() => {
      for (const service of Object.keys(this.#runtime.records())) this.#schedule(service);
    });
  }

  /** Picks up every stored shift. */
  start(): void {
    this.#stopped = false;
    for (const service of Object.keys(this.#runtime.records())) this.#schedule(service);
  }

  /** Stops every timer. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Validates and starts a shift; the first move happens at once. */
  async startShift(service: string, body: ShiftBodyT, actor: string): Promise<ShiftStatus> {
    await this.#runtime.command(service, actor, ({ service: compiled, record, now }) => {
      if (isRolloutActive(record.rollout)) throw new VeerError('rollout_conflict', `cannot shift ${service}: a rollout is ${record.rollout!.phase}`);
      if (isReleaseActive(record.release)) throw new VeerError('release_holds_service', `cannot shift ${service}: release ${record.release!.name} holds it`);
      if (record.shift !== undefined) throw new VeerError('conflict', `a shift of ${service} toward ${record.shift.to} is already running; stop it first (DELETE /api/v1/services/${service}/shift)`);
      if (!compiled.versionsByName.has(body.to)) {
        throw new VeerError('unknown_version', `${JSON.stringify(body.to)} is not a version of service ${service} (versions: ${compiled.versions.map((v) => v.name).join(', ')})`);
      }
      if (compiled.versions.length < 2) throw new VeerError('invalid_rollout', `service ${service} has one version: there is nothing to shift`);
      const everyMs = parseDuration(body.every);
      if (everyMs < MIN_SHIFT_EVERY_MS) throw new VeerError('invalid_rollout', `every must be at least ${MIN_SHIFT_EVERY_MS}ms`);
      const until = body.until ?? 100;
      if (percentOf(compiled, body.to) === roundPercent(until)) throw new VeerError('invalid_rollout', `${body.to} already has ${until}%: nothing to shift`);
      const at = new Date(now).toISOString();
      const shift: ShiftRecord = { id: `${service}@${at}`, to: body.to, step: body.step, everyMs, until: roundPercent(until), startedAt: at, lastStepAt: at };
      return move(compiled, shift, now, 'shift.start', `shift toward ${body.to} started by ${actor}`);
    });
    return this.#statusOf(service);
  }

  /** Stops the service's shift where it is; 404 no_rollout when none runs. */
  async stopShift(service: string, actor: string): Promise<ShiftStatus> {
    await this.#runtime.command(service, actor, ({ record }) => {
      if (record.shift === undefined) throw new VeerError('no_rollout', `service ${service} has no shift running`);
      return { shift: null, action: 'shift.stop', reason: `shift toward ${record.shift.to} stopped by ${actor}; weights stay where they are` };
    });
    return this.#statusOf(service);
  }

  #statusOf(service: string): ShiftStatus {
    const compiled = this.#runtime.table.servicesByName.get(service);
    return { service, weights: compiled?.split.weights ?? {}, shift: this.#runtime.record(service).shift ?? null };
  }

  #schedule(service: string): void {
    const old = this.#timers.get(service);
    if (old !== undefined) clearTimeout(old);
    this.#timers.delete(service);
    const shift = this.#runtime.record(service).shift;
    if (this.#stopped || shift === undefined || !this.#runtime.leadership.isLeader()) return;
    const due = Date.parse(shift.lastStepAt) + shift.everyMs;
    const timer = setTimeout(() => void this.#tick(service, shift.id, shift.lastStepAt), Math.max(0, due - this.#now()));
    timer.unref();
    this.#timers.set(service, timer);
  }

  async #tick(service: string, id: string, lastStepAt: string): Promise<void> {
    this.#timers.delete(service);
    if (!this.#runtime.leadership.isLeader()) return;
    try {
      await this.#runtime.command(service, 'shift', ({ service: compiled, record, now }) => {
        const shift = record.shift;
        if (shift === undefined || shift.id !== id || shift.lastStepAt !== lastStepAt) throw new VeerError('conflict', 'stale shift tick');
        return move(compiled, shift, now, 'shift.step', `shift toward ${shift.to}`);
      });
    } catch (err) {
      if (!(err instanceof VeerError && err.code === 'conflict')) {
        this.#log.error({ err, service }, 'shift step failed; retrying');
        const shift = this.#runtime.record(service).shift;
        if (!this.#stopped && shift !== undefined && !this.#timers.has(service) && this.#runtime.leadership.isLeader()) {
          const timer = setTimeout(() => void this.#tick(service, shift.id, shift.lastStepAt), shift.everyMs);
          timer.unref();
          this.#timers.set(service, timer);
        }
      }
    }
  }
}
