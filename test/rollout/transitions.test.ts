// The rollout state machine: the pure transitions (weights at each step,
// phases, reasons), and which verbs the engine allows from which phase.
//
//   progressing <-> paused -> promoted | aborted

import t from 'tap';
import { VeerError } from '../../src/errors.ts';
import { createLogger } from '../../src/log/index.ts';
import { RolloutEngine, type RolloutPlan, type RolloutVerb } from '../../src/rollout/index.ts';
import { abort, advance, enterStep, newRollout, pause, promote, requireRollout, resume } from '../../src/rollout/transitions.ts';
import { FileStore, ROLLOUT_PHASES, RuntimeState, TablePublisher, type AnalysisResult, type RolloutPhase, type RolloutRecord, type ServiceChange } from '../../src/state/index.ts';
import type { CompiledService } from '../../src/table/index.ts';
import { loadYaml, tableFromYaml } from '../helpers/tables.ts';

const YAML = `services:
  - name: shop
    versions:
      - { name: v1, upstream: "http://127.0.0.1:3001" }
      - { name: v2, upstream: "http://127.0.0.1:3002" }
      - { name: v3, upstream: "http://127.0.0.1:3003" }
    split:
      weights: { v1: 60, v2: 30, v3: 10 }
`;
const shop: CompiledService = tableFromYaml(YAML).servicesByName.get('shop')!;

const T0 = Date.parse('2024-05-01T00:00:00.000Z');
const at = (s: number) => T0 + s * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Steps with a pause, without one, and a last step below 100%. */
const PLAN: RolloutPlan = { canary: 'v3', steps: [{ weight: 10, pause: '1m' }, { weight: 40 }, { weight: 70, pause: '5m' }], analysis: null };

const PASS: AnalysisResult = {
  at: iso(at(30)),
  verdict: 'pass',
  reasons: [],
  windowMs: 10_000,
  canary: { requests: 100, errors: 0, errorRatio: 0, p99Ms: 12 },
  stable: { requests: 900, errors: 1, errorRatio: 0.0011, p99Ms: 11 },
  z: -0.3,
};

/** The record and weights a change leaves; fails when a transition drops its rollout record. */
function recordOf(change: ServiceChange): RolloutRecord {
  if (change.rollout === undefined || change.rollout === null) throw new Error('the change carries no rollout record');
  return change.rollout;
}

const sum = (w: Readonly<Record<string, unknown>> | null | undefined) => Math.round(Object.values(w ?? {}).reduce<number>((a, b) => a + (b as number), 0) * 100) / 100;

t.test('newRollout: the current weights are the baseline, the others are stable, at step 0 of a copy of the plan', async (t) => {
  const rollout = newRollout(shop, PLAN, T0);
  t.same(rollout, {
    id: `shop@${iso(T0)}`,
    canary: 'v3',
    stable: { v1: 60, v2: 30 },
    baseline: { v1: 60, v2: 30, v3: 10 },
    steps: PLAN.steps,
    analysis: null,
    phase: 'progressing',
    pausedBy: null,
    step: 0,
    stepStartedAt: iso(T0),
    startedAt: iso(T0),
    updatedAt: iso(T0),
    endedAt: null,
    reason: 'started',
    lastAnalysis: null,
  });
  t.not(rollout.steps, PLAN.steps, 'the steps are copied');
  t.not(rollout.steps[0], PLAN.steps[0]);
  t.notOk('v3' in rollout.stable, 'the canary is not stable');
});

t.test('each step gives the canary its weight and the stable versions the rest, in their proportions', async (t) => {
  const rollout = newRollout(shop, { canary: 'v3', steps: [0, 1, 10, 25, 33.333, 50, 90, 99.99].map((weight) => ({ weight, pause: '1m' })), analysis: null }, T0);
  for (let i = 0; i < rollout.steps.length; i++) {
    const weight = rollout.steps[i]!.weight;
    const change = enterStep(shop, rollout, i, at(i), 'rollout.step', 'next', null);
    const w = change.weights as Record<string, number>;
    t.equal(w.v3, Math.round(weight * 100) / 100, `step ${i}: the canary gets ${weight}%`);
    t.equal(sum(w), 100, `step ${i}: sums to 100`);
    t.ok(Math.abs(w.v1! - 2 * w.v2!) <= 0.02, `step ${i}: v1 keeps twice v2 (${w.v1} / ${w.v2})`);
    t.same(Object.keys(w), ['v1', 'v2', 'v3'], 'every version, in config order');
  }
  const at50 = enterStep(shop, rollout, 5, at(5), 'rollout.step', 'next', null).weights;
  t.same(at50, { v1: 33.33, v2: 16.67, v3: 50 }, 'exact numbers at 50%');
});

t.test('enterStep: a step with pause progresses; one without waits for resume; the last at 100% without pause promotes', async (t) => {
  const rollout = newRollout(shop, PLAN, T0);

  const first = enterStep(shop, rollout, 0, at(1), 'rollout.start', 'started by alice', null);
  t.match(first, { action: 'rollout.start', weights: { v1: 60, v2: 30, v3: 10 } });
  t.match(recordOf(first), { phase: 'progressing', pausedBy: null, step: 0, stepStartedAt: iso(at(1)), updatedAt: iso(at(1)), endedAt: null });
  t.equal(recordOf(first).reason, 'step 1/3: v3 at 10% for 1m');
  t.equal(first.reason, 'started by alice; step 1/3: v3 at 10% for 1m');
  t.same(first.details, { rollout: rollout.id, phase: 'progressing', step: 0 });

  const second = enterStep(shop, recordOf(first), 1, at(2), 'rollout.step', 'pause over', PASS);
  t.same(second.weights, { v1: 40, v2: 20, v3: 40 });
  t.match(recordOf(second), { phase: 'paused', pausedBy: 'plan', step: 1, stepStartedAt: iso(at(2)), lastAnalysis: PASS });
  t.match(recordOf(second).reason, /no pause: waiting for resume/);
  t.same(second.details, { rollout: rollout.id, phase: 'paused', step: 1, analysis: PASS }, 'the check that decided it is in the details');

  const toFull = newRollout(shop, { canary: 'v3', steps: [{ weight: 20, pause: '1m' }, { weight: 100 }], analysis: null }, T0);
  const last = enterStep(shop, toFull, 1, at(3), 'rollout.step', 'pause over', null);
  t.equal(last.action, 'rollout.promote');
  t.same(last.weights, { v1: 0, v2: 0, v3: 100 });
  t.match(recordOf(last), { phase: 'promoted', step: 1, endedAt: iso(at(3)) });
  t.match(recordOf(last).reason, /the last step gives v3 100%/);

  const heldAtFull = newRollout(shop, { canary: 'v3', steps: [{ weight: 100, pause: '1m' }], analysis: null }, T0);
  const held = enterStep(shop, heldAtFull, 0, at(4), 'rollout.start', 'started', null);
  t.match(recordOf(held), { phase: 'progressing', step: 0, endedAt: null }, 'a 100% step with a pause holds before promoting');
  t.same(held.weights, { v1: 0, v2: 0, v3: 100 });
});

t.test('advance: to the next step; past the last one it promotes at 100% or pauses for a person below it', async (t) => {
  const rollout = recordOf(enterStep(shop, newRollout(shop, PLAN, T0), 0, T0, 'rollout.start', 's', null));

  const next = advance(shop, rollout, at(60), 'step 1 paused 1m', PASS);
  t.equal(next.action, 'rollout.step');
  t.equal(recordOf(next).step, 1);
  t.same(next.weights, { v1: 40, v2: 20, v3: 40 });

  const third = recordOf(advance(shop, { ...recordOf(next), phase: 'progressing', pausedBy: null }, at(90), 'resumed', null));
  t.match(third, { step: 2, phase: 'progressing' });

  const end = advance(shop, third, at(400), 'step 3 paused 5m', PASS);
  t.equal(end.action, 'rollout.pause');
  t.equal(end.weights, undefined, 'the weights stay where the last step put them');
  t.match(recordOf(end), { phase: 'paused', pausedBy: 'plan', step: 2, endedAt: null, stepStartedAt: third.stepStartedAt, lastAnalysis: PASS });
  t.match(recordOf(end).reason, /last step is done with v3 at 70%/);

  const full = recordOf(enterStep(shop, newRollout(shop, { canary: 'v3', steps: [{ weight: 100, pause: '1m' }], analysis: null }, T0), 0, T0, 'rollout.start', 's', null));
  const done = advance(shop, full, at(60), 'step 1 paused 1m', null);
  t.equal(done.action, 'rollout.promote');
  t.match(recordOf(done), { phase: 'promoted', endedAt: iso(at(60)) });
  t.match(recordOf(done).reason, /the plan is done/);
  t.same(done.weights, { v1: 0, v2: 0, v3: 100 });
});

t.test('pause keeps the step and the weights; resume starts the same step over', async (t) => {
  const running = recordOf(enterStep(shop, newRollout(shop, PLAN, T0), 0, T0, 'rollout.start', 's', null));
  for (const by of ['operator', 'analysis'] as const) {
    const paused = pause(running, at(10), by, `by ${by}`, by === 'analysis' ? PASS : null);
    t.equal(paused.action, 'rollout.pause');
    t.equal(paused.weights, undefined, `paused by ${by}: no weight change`);
    t.match(recordOf(paused), { phase: 'paused', pausedBy: by, step: 0, stepStartedAt: running.stepStartedAt, updatedAt: iso(at(10)), reason: `paused: by ${by}` });
    t.equal(recordOf(paused).lastAnalysis, by === 'analysis' ? PASS : null, 'the latest check is kept');

    const resumed = resume(shop, recordOf(paused), at(20), 'resume by bob', null);
    t.equal(resumed.action, 'rollout.resume');
    t.equal(resumed.weights, undefined, 'no weight change');
    t.match(recordOf(resumed), { phase: 'progressing', pausedBy: null, step: 0, stepStartedAt: iso(at(20)) }, "the step's pause starts over");
    t.match(recordOf(resumed).reason, /resumed: resume by bob; step 1\/3 \(10%\) starts its pause over/);
  }
  const withCheck = recordOf(pause({ ...running, lastAnalysis: PASS }, at(10), 'operator', 'x', null));
  t.equal(withCheck.lastAnalysis, PASS, 'a pause without a new check keeps the last one');
});

t.test('resume of a step without pause moves to the next step', async (t) => {
  const atStep2 = recordOf(enterStep(shop, newRollout(shop, PLAN, T0), 1, T0, 'rollout.step', 's', null));
  t.equal(atStep2.pausedBy, 'plan');
  const resumed = resume(shop, atStep2, at(5), 'resume by bob', null);
  t.equal(resumed.action, 'rollout.step');
  t.same(resumed.weights, { v1: 20, v2: 10, v3: 70 });
  t.match(recordOf(resumed), { phase: 'progressing', step: 2, stepStartedAt: iso(at(5)) });
});

t.test(
  "resume after the plan's last step (below 100%) promotes, as the pause's reason and the README say",
  async (t) => {
    const last = recordOf(enterStep(shop, newRollout(shop, PLAN, T0), 2, T0, 'rollout.step', 's', null));
    const end = recordOf(advance(shop, last, at(300), 'step 3 paused 5m', null));
    t.match(end.reason, /resume \(which promotes\)/);
    const resumed = resume(shop, end, at(400), 'resume by bob', null);
    t.equal(resumed.action, 'rollout.promote');
    t.equal(recordOf(resumed).phase, 'promoted');
    t.same(resumed.weights, { v1: 0, v2: 0, v3: 100 });
  },
);

t.test('promote gives the canary 100% and abort gives the stable versions 100%, from either live phase', async (t) => {
  const running = recordOf(enterStep(shop, newRollout(shop, PLAN, T0), 1, T0, 'rollout.step', 's', null));
  for (const phase of ['progressing', 'paused'] as const) {
    const rollout = { ...running, phase, pausedBy: phase === 'paused' ? ('operator' as const) : null };

    const promoted = promote(shop, rollout, at(9), 'promote by alice', null);
    t.equal(promoted.action, 'rollout.promote');
    t.same(promoted.weights, { v1: 0, v2: 0, v3: 100 }, `${phase}: promote gives the canary everything`);
    t.match(recordOf(promoted), { phase: 'promoted', pausedBy: null, step: 1, endedAt: iso(at(9)), updatedAt: iso(at(9)), reason: 'promoted: promote by alice' });

    const aborted = abort(shop, rollout, at(9), 'analysis failed', PASS);
    t.equal(aborted.action, 'rollout.abort');
    t.same(aborted.weights, { v1: 66.67, v2: 33.33, v3: 0 }, `${phase}: abort puts 100% back on stable, in its proportions`);
    t.equal(sum(aborted.weights), 100);
    t.match(recordOf(aborted), { phase: 'aborted', pausedBy: null, step: 1, endedAt: iso(at(9)), reason: 'aborted: analysis failed', lastAnalysis: PASS });
    t.same(aborted.details, { rollout: rollout.id, phase: 'aborted', step: 1, analysis: PASS });
  }

  // Stable versions that all had 0 when the rollout started: the first one in config order takes everything back.
  const allCanary = tableFromYaml(YAML.replace('{ v1: 60, v2: 30, v3: 10 }', '{ v1: 0, v2: 0, v3: 100 }')).servicesByName.get('shop')!;
  const rollout = newRollout(allCanary, PLAN, T0);
  t.same(abort(allCanary, rollout, at(1), 'x', null).weights, { v1: 100, v2: 0, v3: 0 });
});

t.test('the stable proportions are those at the start, not the weights served now', async (t) => {
  const rollout = newRollout(shop, PLAN, T0);
  // The service is served with other weights by now (e.g. reloaded config weights): the record decides.
  const reweighed = tableFromYaml(YAML.replace('{ v1: 60, v2: 30, v3: 10 }', '{ v1: 1, v2: 1, v3: 1 }')).servicesByName.get('shop')!;
  t.same(abort(reweighed, rollout, at(1), 'x', null).weights, { v1: 66.67, v2: 33.33, v3: 0 });
  t.same(enterStep(reweighed, rollout, 1, at(1), 'rollout.step', 'x', null).weights, { v1: 40, v2: 20, v3: 40 });
});

/** The phases each verb acts from, as the engine asks for them. */
const ALLOWED: Record<RolloutVerb, readonly RolloutPhase[]> = {
  pause: ['progressing'],
  resume: ['paused'],
  promote: ['progressing', 'paused'],
  abort: ['progressing', 'paused'],
};

t.test('requireRollout: no rollout is no_rollout; a phase the verb does not act from is rollout_conflict', async (t) => {
  const base = newRollout(shop, PLAN, T0);
  for (const [verb, phases] of Object.entries(ALLOWED)) {
    const err = (() => {
      try {
        requireRollout('shop', undefined, verb, phases);
      } catch (e) {
        return e;
      }
    })();
    t.type(err, VeerError);
    t.match(err, { code: 'no_rollout', status: 404 }, `${verb} without a rollout`);
    for (const phase of ROLLOUT_PHASES) {
      const rollout = { ...base, phase };
      if (phases.includes(phase)) {
        t.equal(requireRollout('shop', rollout, verb, phases), rollout, `${verb} from ${phase}: allowed`);
      } else {
        t.throws(() => requireRollout('shop', rollout, verb, phases), { code: 'rollout_conflict', status: 409, message: new RegExp(`cannot ${verb} the rollout of shop: it is ${phase}`) }, `${verb} from ${phase}: refused`);
      }
    }
  }
  t.throws(() => requireRollout('shop', { ...base, phase: 'aborted' }, 'resume', ['paused']), { message: /start a new one/ }, 'an ended rollout points at starting a new one');
  t.throws(() => requireRollout('shop', { ...base, phase: 'progressing' }, 'resume', ['paused']), { message: /it is progressing$/ }, 'a live one does not');
});

t.test('the engine: every verb from every phase, allowed or refused with its code, and what it leaves', async (t) => {
  const routes = new TablePublisher();
  routes.applyConfig(loadYaml(YAML));
  const log = createLogger('silent', { pretty: false });
  const runtime = new RuntimeState({ routes, store: new FileStore(`${t.testdir()}/state.json`), log });
  await runtime.start();
  const engine = new RolloutEngine({ runtime, analysis: null, log });
  engine.start();
  t.teardown(() => engine.stop());

  // A rollout of v3 held at step 1 (40%) with a long pause, so no timer fires during the test.
  const plan: RolloutPlan = { canary: 'v3', steps: [{ weight: 10, pause: '1h' }, { weight: 40, pause: '1h' }, { weight: 70, pause: '1h' }], analysis: null };
  const put = (phase: RolloutPhase) =>
    runtime.command('shop', 'test', ({ service, now }) => {
      const entered = recordOf(enterStep(service, newRollout(service, plan, now), 1, now, 'rollout.start', 'test', null));
      return { rollout: { ...entered, phase, pausedBy: phase === 'paused' ? 'operator' : null }, weights: { v1: 40, v2: 20, v3: 40 }, action: 'test', reason: 'test' };
    });
  const served = () => runtime.table.servicesByName.get('shop')!.split.weights;

  const expected: Record<RolloutVerb, { phase: RolloutPhase; weights: Record<string, number> }> = {
    pause: { phase: 'paused', weights: { v1: 40, v2: 20, v3: 40 } },
    resume: { phase: 'progressing', weights: { v1: 40, v2: 20, v3: 40 } },
    promote: { phase: 'promoted', weights: { v1: 0, v2: 0, v3: 100 } },
    abort: { phase: 'aborted', weights: { v1: 66.67, v2: 33.33, v3: 0 } },
  };
  for (const verb of Object.keys(ALLOWED) as RolloutVerb[]) {
    for (const phase of ROLLOUT_PHASES) {
      await put(phase);
      const before = runtime.record('shop');
      const lines = runtime.history().length;
      const outcome = await engine.act('shop', verb, 'alice').then(
        () => null,
        (err: unknown) => err,
      );
      if (verb === 'abort' && phase === 'promoted') {
        // Within the rollback window (1h by default) an abort of a promoted rollout rolls it back.
        t.equal(outcome, null, 'abort from promoted: a rollback');
        t.match(runtime.record('shop').rollout, { phase: 'rolledBack', step: 1 });
        t.same(served(), expected.abort.weights, 'abort from promoted: the stable versions are back');
        t.equal(runtime.history().at(-1)!.action, 'rollout.rollback');
      } else if (ALLOWED[verb].includes(phase)) {
        t.equal(outcome, null, `${verb} from ${phase}: allowed`);
        t.match(runtime.record('shop').rollout, { phase: expected[verb].phase, step: 1 }, `${verb} from ${phase}: now ${expected[verb].phase} at the same step`);
        t.same(served(), expected[verb].weights, `${verb} from ${phase}: weights served`);
        t.equal(runtime.history().at(-1)!.action, `rollout.${verb}`);
      } else {
        t.type(outcome, VeerError);
        t.match(outcome, { code: 'rollout_conflict' }, `${verb} from ${phase}: refused`);
        t.same(runtime.record('shop'), before, `${verb} from ${phase}: the record is unchanged`);
        t.equal(runtime.history().length, lines, `${verb} from ${phase}: no history line`);
      }
    }
  }

  await runtime.command('shop', 'test', () => ({ rollout: null, action: 'test', reason: 'clear' }));
  for (const verb of Object.keys(ALLOWED) as RolloutVerb[]) {
    await t.rejects(engine.act('shop', verb, 'alice'), { code: 'no_rollout' }, `${verb} without a rollout`);
  }

  // Starting: refused while one is live, allowed again once it ended.
  await put('paused');
  await t.rejects(engine.startRollout('shop', { canary: 'v3', steps: [{ weight: 5, pause: '1h' }] }, 'alice'), { code: 'rollout_conflict' });
  await put('aborted');
  const status = await engine.startRollout('shop', { canary: 'v3', steps: [{ weight: 5, pause: '1h' }] }, 'alice');
  t.match(status, { phase: 'progressing', step: 0 });
  t.same(served(), { v1: 63.33, v2: 31.67, v3: 5 }, "the new rollout's stable proportions are the weights served when it started");
});
