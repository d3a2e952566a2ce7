// The CommandQueue: a FIFO mutex for async work. Arrival order, one task at
// a time, failures that do not stop the chain, and a pending count that
// says when it is idle.

import t from 'tap';
import { CommandQueue } from '../../src/state/index.ts';

/** A promise a test settles by hand. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('tasks start in arrival order and each starts only after the one before has settled', async (t) => {
  const queue = new CommandQueue();
  const events: string[] = [];
  const gates = [deferred(), deferred(), deferred()];
  const runs = gates.map((gate, i) =>
    queue.run(async () => {
      events.push(`start ${i}`);
      await gate.promise;
      events.push(`end ${i}`);
      return i * 10;
    }),
  );
  await tick();
  t.same(events, ['start 0'], 'only the first runs');
  // Settle them out of order: the third's gate opening first must not let it start.
  gates[2]!.resolve();
  gates[1]!.resolve();
  await tick();
  t.same(events, ['start 0'], 'later tasks wait for the first, whatever their own gates');
  gates[0]!.resolve();
  t.same(await Promise.all(runs), [0, 10, 20], 'each run resolves with its own task value');
  t.same(events, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
});

t.test('a task does not start synchronously inside run(), even on an empty queue', async (t) => {
  const queue = new CommandQueue();
  let started = false;
  const run = queue.run(async () => {
    started = true;
  });
  t.equal(started, false);
  await run;
  t.equal(started, true);
});

t.test('never two at once, over many tasks with uneven durations', async (t) => {
  const queue = new CommandQueue();
  let running = 0;
  let most = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      queue.run(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, (i * 7) % 4));
        order.push(i);
        running--;
      }),
    ),
  );
  t.equal(most, 1, 'at most one task ran at any time');
  t.same(
    order,
    Array.from({ length: 30 }, (_, i) => i),
  );
});

t.test('a rejected task rejects its own run only; the tasks after it still run', async (t) => {
  const queue = new CommandQueue();
  const ran: string[] = [];
  const boom = new Error('boom');
  const first = queue.run(async () => {
    ran.push('first');
    throw boom;
  });
  const sync = queue.run(() => {
    ran.push('sync');
    throw new Error('thrown before any await');
  });
  const third = queue.run(async () => {
    ran.push('third');
    return 'ok';
  });
  await t.rejects(first, boom, "the failing task's own error");
  await t.rejects(sync, /thrown before any await/, 'a task that throws synchronously rejects too');
  t.equal(await third, 'ok');
  t.same(ran, ['first', 'sync', 'third']);
});

t.test('a failed task leaves no unhandled rejection behind', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  const queue = new CommandQueue();
  await queue
    .run(async () => {
      throw new Error('handled by the caller');
    })
    .catch(() => {});
  await queue.run(async () => {});
  await tick();
  t.same(unhandled, [], 'the queue chain swallows the failure it carries');
});

t.test('pending counts queued and running tasks; 0 once idle', async (t) => {
  const queue = new CommandQueue();
  t.equal(queue.pending, 0, 'idle at first');
  const gate = deferred();
  const a = queue.run(() => gate.promise);
  const b = queue.run(async () => {
    throw new Error('fails');
  });
  const c = queue.run(async () => 'c');
  t.equal(queue.pending, 3);
  await tick();
  t.equal(queue.pending, 3, 'still 3 while the first waits');
  gate.resolve();
  await a;
  t.equal(queue.pending, 2, 'the count drops before the caller of a finished task resumes');
  await b.catch(() => {});
  t.equal(queue.pending, 1, 'a failed task counts down too');
  await c;
  t.equal(queue.pending, 0, 'idle again');
});

t.test('run(noop) resolves once every task queued before it has settled (how RuntimeState.idle waits)', async (t) => {
  const queue = new CommandQueue();
  const gate = deferred();
  const done: string[] = [];
  void queue.run(async () => {
    await gate.promise;
    done.push('slow');
  });
  void queue
    .run(async () => {
      done.push('failing');
      throw new Error('x');
    })
    .catch(() => {});
  let idle = false;
  const waiting = queue.run(async () => {}).then(() => (idle = true));
  await tick();
  t.equal(idle, false, 'not idle while a task waits');
  gate.resolve();
  await waiting;
  t.same(done, ['slow', 'failing'], 'both earlier tasks settled first');
  t.equal(queue.pending, 0);
});

t.test('a task queued from inside a running task runs after it', async (t) => {
  const queue = new CommandQueue();
  const events: string[] = [];
  let inner: Promise<void> | null = null;
  await queue.run(async () => {
    events.push('outer start');
    inner = queue.run(async () => {
      events.push('inner');
    });
    await tick();
    events.push('outer end');
  });
  await inner;
  t.same(events, ['outer start', 'outer end', 'inner']);
});
