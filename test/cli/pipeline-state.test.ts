// The pipeline's state file (atomic writes, compare-and-swap against another
// writer, a corrupt file never overwritten), its lock, and the live view.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { parsePlanText, type PipelinePlan } from '../../src/cli/pipeline-plan.ts';
import { PipelineStore, acquireLock, newPipelineState, readPipelineState } from '../../src/cli/pipeline-state.ts';
import { liveView } from '../../src/cli/pipeline-view.ts';

function planOf(): PipelinePlan {
  const result = parsePlanText('service: shop\ncanary: v2\nstages:\n  - { name: dev, admin: "http://a:1" }\n  - parallel: [{ name: eu, admin: "http://b:1" }, { name: us, admin: "http://c:1" }]\n');
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.plan;
}

const fileIn = (name = 'PLAN.yaml.state.json') => join(mkdtempSync(join(tmpdir(), 'veer-pipeline-state-')), name);

t.test('saves are whole files, numbered, and read back', async (t) => {
  const file = fileIn();
  t.equal(await readPipelineState(file), null, 'no file: not started');
  const state = newPipelineState(planOf(), new Date('2024-05-02T10:00:00Z'));
  const store = new PipelineStore(file, 'run:1', null);
  await store.save(state);
  state.stages[0]!.status = 'running';
  state.stages[0]!.rolloutId = 'r-1';
  await Promise.all([store.save(state), store.save(state), store.check()]);
  const read = await readPipelineState(file);
  t.equal(read?.revision, 3);
  t.equal(read?.writer, 'run:1');
  t.same(
    read?.stages.map((s) => [s.name, s.status, s.rolloutId]),
    [
      ['dev', 'running', 'r-1'],
      ['eu', 'pending', null],
      ['us', 'pending', null],
    ],
  );
  t.same(readdirSync(join(file, '..')), ['PLAN.yaml.state.json'], 'no temp file left behind');
});

t.test('a save after another writer wrote the file fails instead of overwriting it', async (t) => {
  const file = fileIn();
  const state = newPipelineState(planOf(), new Date());
  const run = new PipelineStore(file, 'run:1', null);
  await run.save(state);
  const onDisk = (await readPipelineState(file))!;
  const abort = new PipelineStore(file, 'abort:2', onDisk);
  onDisk.phase = 'stopping';
  await abort.save(onDisk);
  await t.rejects(run.check(), { name: 'ExternalChangeError' });
  state.stages[0]!.status = 'running';
  await t.rejects(run.save(state), { name: 'ExternalChangeError' });
  t.equal((await readPipelineState(file))?.phase, 'stopping', "the other writer's state stays");
});

t.test('a state file that is not a pipeline state is refused, never rewritten', async (t) => {
  const file = fileIn();
  writeFileSync(file, '{"format":"veer-pipeline-state/1"');
  await t.rejects(readPipelineState(file), { name: 'StateFileError' });
  writeFileSync(file, '{"format":"something else"}');
  await t.rejects(readPipelineState(file), { message: /is not a veer pipeline state/ });
  t.equal(readFileSync(file, 'utf8'), '{"format":"something else"}');
});

t.test('the lock: one live run at a time; a dead run is taken over', async (t) => {
  const file = fileIn();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  t.teardown(() => sleeper.kill('SIGKILL'));
  writeFileSync(`${file}.lock`, `${sleeper.pid}\n`);
  await t.rejects(acquireLock(file), { name: 'LockedError' }, 'a live process holds it');
  sleeper.kill('SIGKILL');
  await new Promise((resolve) => sleeper.on('exit', resolve));
  const lock = await acquireLock(file);
  t.equal(readFileSync(`${file}.lock`, 'utf8').trim(), String(process.pid), 'taken over from the dead one');
  await lock.release();
  t.same(readdirSync(join(file, '..')), [], 'released');
});

t.test('the live view draws one line per stage on a terminal', async (t) => {
  const state = newPipelineState(planOf(), new Date());
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 160, rows: 40 });
  let drawn = '';
  stream.on('data', (c: Buffer) => (drawn += c.toString()));
  const view = liveView(state, stream);
  const dev = state.stages[0]!;
  dev.status = 'running';
  dev.rollout = { phase: 'progressing', step: 1, stepCount: 4, canaryWeight: 25 };
  dev.detail = 'progressing step 2/4, v2 at 25%; last check pass';
  view.stage(dev);
  view.note('a pipeline event');
  view.close();
  t.match(drawn, /dev \[█{10}░{10}\] running +progressing step 2\/4, v2 at 25%; last check pass/);
  t.match(drawn, /eu +\[░{20}\] pending +not started/);
  t.match(drawn, /us +\[░{20}\] pending +not started/);
  t.match(drawn, /a pipeline event/);
});
